"""``keras_datasets``: read from Keras's cache, laid down here in the layout ``keras.datasets`` leaves
(mnist.npz, fashion-mnist/*.gz, cifar-10-batches-py-target/, imdb.npz), trained, exported to int8
and verified; the bad inputs, and a download that cannot be made (offline)."""

import gzip
import json
import pickle

import numpy as np
import pytest
from conftest import one_line_error, run_cli
from hub_jobs import OFFLINE, train_export_verify

from core import PluginHost, UsageError
from plugins.datasets.keras_datasets import load

FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def bars(n, size, channels=None, classes=10):
    """uint8 images of a bright bar whose height says the class, and the labels (uint8)."""
    y = (np.arange(n) % classes).astype("uint8")
    shape = (n, size, size) if channels is None else (n, size, size, channels)
    x = np.zeros(shape, "uint8")
    for i, c in enumerate(y):
        x[i, 2 * c % (size - 4) : 2 * c % (size - 4) + 4, 2 : size - 2] = 255
    return x, y


def lay_down_cache(home, n=200, n_test=60):
    """Keras's cache under ``home/datasets``, in the formats its loaders read: an .npz of arrays
    (mnist), gzipped IDX files (fashion-mnist), pickled CIFAR batches and an .npz of ragged
    object arrays of word ids plus the word index (imdb)."""
    root = home / "datasets"
    root.mkdir(parents=True)
    (x, y), (xt, yt) = bars(n, 28), bars(n_test, 28)
    np.savez(root / "mnist.npz", x_train=x, y_train=y, x_test=xt, y_test=yt)
    fashion = root / "fashion-mnist"
    fashion.mkdir()
    for part, (images, labels) in (("train", (x, y)), ("t10k", (xt, yt))):
        with gzip.open(fashion / f"{part}-labels-idx1-ubyte.gz", "wb") as f:
            f.write(b"\0" * 8 + labels.tobytes())
        with gzip.open(fashion / f"{part}-images-idx3-ubyte.gz", "wb") as f:
            f.write(b"\0" * 16 + images.tobytes())
    cifar = root / "cifar-10-batches-py-target" / "cifar-10-batches-py"
    cifar.mkdir(parents=True)
    for name in [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]:
        images, labels = bars(20, 32, 3)
        rows = images.transpose(0, 3, 1, 2).reshape(20, -1)  # CIFAR's rows: channel planes, then rows
        batch = {b"data": rows, b"labels": [int(v) for v in labels], b"batch_label": name.encode()}
        (cifar / name).write_bytes(pickle.dumps(batch))
    names = [b"plane", b"car", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    (cifar / "batches.meta").write_bytes(pickle.dumps({b"label_names": names}))
    rng = np.random.default_rng(0)

    def reviews(count):  # positive reviews use words 1-20, negative ones words 21-40 (Keras's word indices)
        labels = np.arange(count) % 2
        texts = [[int(w) for w in rng.integers(1, 21, rng.integers(5, 30)) + 20 * (1 - c)] for c in labels]
        array = np.empty(count, dtype=object)
        array[:] = texts
        return array, labels

    (r, ry), (rt, ryt) = reviews(120), reviews(40)
    np.savez(root / "imdb.npz", x_train=r, y_train=ry, x_test=rt, y_test=ryt)
    (root / "imdb_word_index.json").write_text(json.dumps({f"word{i}": i for i in range(1, 41)}))
    return home


def test_registered_with_its_options():
    host = PluginHost(["plugins.datasets.keras_datasets"], builtins=(), entry_points=False, disabled=())
    assert host.registry("dataset").get("keras_datasets").defaults == {
        "name": "mnist",
        "size": 0,
        "channels": 0,
        "max_tokens": 10000,
        "length": 200,
        "samples": 0,
        "batch_size": 32,
        "validation": 0.1,
        "seed": 0,
    }


# The loader's own checks, run first in the training process (a TensorFlow process costs ~10 s).
STREAMING = """
import json
from plugins.datasets.keras_datasets import load

data = load("fashion_mnist", size=8, channels=3, batch_size=16, validation=0.2, samples=50)
x, y = data.train[0]
cifar = load("cifar10", size=16, batch_size=8)
facts = {"stream": {
    "class_names": data.class_names,
    "batch": [list(x.shape), str(x.dtype), float(x.min()), float(x.max()), str(y.dtype)],
    "rows": [len(s.paths) for s in (data.train, data.validation, data.test)],
    "validation_labels": sorted(data.validation.labels.tolist()),
    "no_validation": load("mnist", samples=30, validation=0).validation is None,
    "gray": list(load("mnist", batch_size=4).test[0][0].shape),
    "cifar": [cifar.class_names[:2], list(cifar.train[0][0].shape), [len(s.paths) for s in (cifar.train, cifar.test)]],
}}
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The facts of one TensorFlow process: the loader's checks (``STREAMING``), then mnist and imdb
    from the cache trained 1 epoch, exported to int8 and verified."""
    tmp = tmp_path_factory.mktemp("keras_datasets")
    home = lay_down_cache(tmp / "keras_home")
    jobs = [
        dict(arch="cnn", data="keras_datasets", options={"name": "mnist"}, hp={"filters": 4, "dense": 8}),
        dict(
            arch="mlp",
            data="keras_datasets",
            options={"name": "imdb", "max_tokens": 64, "length": 16},
            hp={"units": [8]},
        ),
    ]
    for job in jobs:
        job["out"] = str(tmp / job["options"]["name"])
    facts = train_export_verify(jobs, env={"KERAS_HOME": str(home)}, prelude=STREAMING)
    return facts, [facts[job["out"]] for job in jobs]


@pytest.mark.slow
def test_mnist_and_imdb_from_the_cache_train_export_int8_and_verify(trained):
    mnist, imdb = trained[1]
    for done in (mnist, imdb):
        assert done["files"] == ["labels.txt", "model.json", "model_int8.tflite"]
        assert done["verify"]["agreement"] >= 0.9, done["verify"]
        assert done["run"]["dataset"]["name"] == "keras_datasets"
    assert mnist["labels"] == [str(d) for d in range(10)] == mnist["model_json"]["class_names"]
    assert mnist["embedded"]["class_names"] == mnist["labels"] and imdb["embedded"]["class_names"] == imdb["labels"]
    assert mnist["run"]["spec"]["input_shape"] == [28, 28, 1]  # the images' own size and channels
    assert mnist["verify"]["samples"] == 60  # the test split is the cache's own
    assert mnist["model_json"]["normalization"]["scale"] == pytest.approx(1 / 255)
    assert imdb["labels"] == ["negative", "positive"]
    assert imdb["run"]["spec"]["input_shape"] == [16] and imdb["run"]["spec"]["vocab_size"] == 64
    vocabulary = imdb["model_json"]["vocabulary"]
    assert vocabulary[:5] == ["<pad>", "<start>", "<oov>", "<unused>", "word1"] and len(vocabulary) == 64


@pytest.mark.slow
def test_streamed_images_at_the_size_and_channels_asked(trained):
    facts = trained[0]["stream"]
    assert facts["class_names"] == FASHION
    shape, dtype, low, high, label_dtype = facts["batch"]
    assert (shape, dtype, label_dtype) == ([16, 8, 8, 3], "float32", "int32") and 0 <= low < high <= 1
    assert facts["rows"] == [40, 10, 50]  # samples=50 of each: the train one cut in train and validation
    assert facts["validation_labels"] == list(range(10))  # stratified: one of each class
    assert facts["no_validation"] and facts["gray"] == [4, 28, 28, 1]
    assert facts["cifar"] == [["plane", "car"], [8, 16, 16, 3], [90, 20]]  # names from batches.meta; 10 % validation


def error(exc_type, **options):
    with pytest.raises(exc_type) as info:
        load(**options)
    message = str(info.value)
    assert "\n" not in message and message.startswith("dataset 'keras_datasets': ")
    return message


def test_bad_options_are_named():
    assert error(UsageError, name="mnst") == (
        "dataset 'keras_datasets': option name='mnst': no such dataset in keras.datasets (did you mean 'mnist'?); "
        "valid: cifar10, cifar100, fashion_mnist, imdb, mnist"
    )
    assert "option channels=2: valid: 0 (as stored), 1 (grayscale), 3 (RGB)" in error(UsageError, channels=2)
    assert "option size=2: expected an integer in [4, 1024] (0: the images' own size)" in error(UsageError, size=2)
    assert "option max_tokens=2: expected an integer at least 4" in error(UsageError, name="imdb", max_tokens=2)
    assert "options validation must be fractions" in error(UsageError, validation=1.5)


def test_cli_unknown_name_exits_2_and_an_unreachable_download_exits_1_saying_where_to_put_it(tmp_path):
    args = ["train", "--arch", "cnn", "--data", "keras_datasets", "--out", tmp_path / "run"]
    env = {"KERAS_BACKEND": "jax", "KERAS_HOME": str(tmp_path / "empty"), **OFFLINE}
    proc = run_cli(*args, "--data-opt", "name=cifar", env=env)
    assert one_line_error(proc, 2).startswith(
        "kerastack: error: dataset 'keras_datasets': option name='cifar': no such dataset in keras.datasets"
    )
    proc = run_cli(*args, "--data-opt", "name=fashion_mnist", env=env)
    where = tmp_path / "empty" / "datasets" / "fashion-mnist"
    message = one_line_error(proc, 1)
    assert message.startswith("kerastack: error: dataset 'keras_datasets': cannot download fashion_mnist (")
    assert message.endswith(
        "fetch https://storage.googleapis.com/tensorflow/tf-keras-datasets/{train,t10k}-{labels-idx1,images-idx3}"
        f"-ubyte.gz on a connected machine and put the four files in {where}"
    )
    assert not (tmp_path / "run").exists()
