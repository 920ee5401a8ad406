"""``tfds``: a TensorFlow Datasets builder defined and prepared here into a ``data_dir`` (TFDS's
``GeneratorBasedBuilder``, offline), then read by name from fresh processes: trained, exported to
int8 and verified; the stream's batches, and the bad inputs (names, splits, features, offline)."""

import json

import pytest
from conftest import one_line_error, read_json, run_cli, run_python
from hub_jobs import OFFLINE, train_export_verify

from core import PluginHost, UsageError
from plugins.datasets.tfds import load

NAME = "kerastack_bars"

# Defines and prepares the dataset, then reads it through the plugin (the training that follows in
# this process finds it by name in the data_dir too; the CLI tests read it from fresh processes).
PREPARE = """
import json, sys
import numpy as np
import tensorflow_datasets as tfds

class KerastackBars(tfds.core.GeneratorBasedBuilder):
    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        features = tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(None, None, 3)),
            "caption": tfds.features.Text(),
            "label": tfds.features.ClassLabel(names=["bright", "dark"]),
            "score": tfds.features.Scalar(dtype=np.float32),
        })
        return tfds.core.DatasetInfo(builder=self, features=features, supervised_keys=("image", "label"))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(80, 0), "test": self._generate_examples(20, 1)}

    def _generate_examples(self, n, seed):
        rng = np.random.default_rng(seed)
        words = (["sunny", "light", "white", "glow"], ["night", "black", "shadow", "gloom"])
        for i in range(n):
            c = i % 2
            pixels = np.clip(rng.normal(200 if c == 0 else 40, 20, (10 + i % 5, 14, 3)), 0, 255).astype("uint8")
            caption = " ".join(rng.choice(words[c], 5))
            yield i, {"image": pixels, "caption": caption, "label": c, "score": float(i)}

data_dir = sys.argv[2]
KerastackBars(data_dir=data_dir).download_and_prepare()

from plugins.datasets.tfds import load
data = load("kerastack_bars", data_dir=data_dir, size=8, channels=1, batch_size=16, seed=3)
facts = {"class_names": data.class_names, "batches": [len(s) for s in (data.train, data.validation, data.test)]}
x, y = data.train[0]
facts["batch"] = [list(x.shape), str(x.dtype), float(x.min()), float(x.max()), str(y.dtype)]
# Asked in any order, an epoch's batches (Keras shuffles their indices) are one pass over the examples.
data.train.on_epoch_begin()
epoch = [data.train[i] for i in (3, 0, 2, 1)]
facts["epoch_sizes"] = [len(b[1]) for b in epoch]
facts["epoch_labels"] = sorted(np.concatenate([b[1] for b in epoch]).tolist())
data.train.on_epoch_begin()
again = [data.train[i] for i in range(4)]
facts["reshuffled"] = any(not np.array_equal(a[0], b[0]) for a, b in zip(epoch, again))
# The others are read in order: a batch asked again is the same batch.
first = data.test[0][0]
facts["test_again"] = bool(np.array_equal(data.test[0][0], first)) and len(data.test[0][1]) == 15
facts["own_size_refused"] = None
try:
    load("kerastack_bars", data_dir=data_dir)
except Exception as exc:
    facts["own_size_refused"] = str(exc)
own = load("kerastack_bars", data_dir=data_dir, size=8, test_split="test", validation=0.25, batch_size=16)
words = load("kerastack_bars", data_dir=data_dir, text="caption", length=4, test_split="test", samples=40)
facts["test_split"] = [[len(own.train), len(own.validation), len(own.test)], list(own.test[1][0].shape),
                       list(words.test[0].shape), len(words.train[0]) + len(words.validation[0])]
errors = {}
for options in ({"test_split": "tset"}, {"test_split": "train"}, {"split": "tran"}, {"label": "lable"}, {"label": "score"}, {"image": "caption"},
                {"validation": 0.5, "test": 0.49, "samples": 20}):
    try:
        load("kerastack_bars", data_dir=data_dir, size=8, **options)
    except Exception as exc:
        errors[json.dumps(options)] = [type(exc).__name__, str(exc)]
facts["errors"] = errors
facts = {"stream": facts}
"""


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """``(data_dir, facts)`` of one TensorFlow process: the dataset prepared, what the plugin read of
    it (``PREPARE``), then an image and a text model trained 1 epoch on it, exported and verified."""
    tmp = tmp_path_factory.mktemp("tfds")
    data_dir = tmp / "data"
    options = {"name": NAME, "data_dir": str(data_dir)}
    jobs = [
        dict(arch="cnn", data="tfds", options={**options, "size": 16}, hp={"filters": 4, "dense": 8}, out=str(tmp / "image-run")),
        dict(arch="mlp", data="tfds", options={**options, "text": "caption", "length": 6}, hp={"units": [8]}, out=str(tmp / "text-run")),
    ]  # fmt: skip
    facts = train_export_verify(jobs, env={}, prelude=PREPARE, args=(data_dir,))
    return data_dir, facts, [facts[job["out"]] for job in jobs]


def test_registered_with_its_options():
    host = PluginHost(["plugins.datasets.tfds"], builtins=(), entry_points=False, disabled=())
    defaults = host.registry("dataset").get("tfds").defaults
    assert list(defaults)[:3] == ["name", "split", "data_dir"]
    assert defaults["split"] == "train" and defaults["size"] == 0 and defaults["batch_size"] == 32


def test_bad_options_are_refused_before_anything_is_read():
    def error(**options):
        with pytest.raises(UsageError) as info:
            load(**{"name": NAME, **options})
        assert "\n" not in str(info.value) and str(info.value).startswith("dataset 'tfds': ")
        return str(info.value)

    assert error(name="") == (
        "dataset 'tfds': option name is not set; give a TensorFlow Datasets name, e.g. --data-opt name=mnist"
    )
    assert error(size=2) == "dataset 'tfds': option size=2: expected an integer in [4, 1024] (0: the images' own size)"
    assert "option channels=2: valid: 0 (as stored), 1 (grayscale), 3 (RGB)" in error(channels=2)
    assert "options validation and test must be fractions" in error(validation=0.6, test=0.6)
    assert "option length=0" in error(length=0)
    assert "give one of them" in error(image="image", text="caption")


@pytest.mark.slow
def test_the_splits_stream_one_pass_of_examples_per_epoch(prepared):
    facts = prepared[1]["stream"]
    assert facts["class_names"] == ["bright", "dark"]
    assert facts["batches"] == [4, 1, 1]  # 80 examples: 56 train, 12 validation, 12 test at 0.15
    assert facts["batch"] == [[16, 8, 8, 1], "float32", facts["batch"][2], facts["batch"][3], "int32"]
    assert 0 <= facts["batch"][2] < facts["batch"][3] <= 1
    assert facts["epoch_sizes"] == [16, 16, 16, 8]  # the last batch the short one, whichever index asked
    assert facts["epoch_labels"] == sorted(facts["epoch_labels"]) and len(facts["epoch_labels"]) == 56
    assert facts["reshuffled"]
    # test_split=test: the dataset's own 20 test examples; validation cut from the 80 (or 40) of train.
    assert facts["test_split"] == [[4, 2, 2], [4, 8, 8, 3], [20, 4], 40]  # batches of 16: 60 | 20 | 20
    assert facts["own_size_refused"] == (
        "dataset 'tfds': kerastack_bars's images have no one square size (feature 'image': shape (None, None, 3)); "
        "give --data-opt size=N"
    )


@pytest.mark.slow
def test_bad_splits_and_features_are_named(prepared):
    facts = prepared[1]["stream"]
    errors = {json.loads(k).popitem()[1] if len(json.loads(k)) == 1 else "few": v for k, v in facts["errors"].items()}
    assert errors["tset"][1] == (
        "dataset 'tfds': option test_split='tset': no such split of kerastack_bars (did you mean 'test'?); valid: test, train"
    )
    assert errors["train"][1] == (
        "dataset 'tfds': option test_split='train' is the training split too; give another split, or none"
    )
    assert errors["tran"] == [
        "UsageError",
        "dataset 'tfds': option split='tran': no such split of kerastack_bars (did you mean 'train'?); valid: test, train",
    ]
    assert errors["lable"] == [
        "UsageError",
        "dataset 'tfds': option label='lable': no such feature in kerastack_bars (did you mean 'label'?); "
        "features: caption, image, label, score",
    ]
    assert errors["score"][1].startswith(
        "dataset 'tfds': option label='score': feature 'score' of kerastack_bars is not a ClassLabel (features: caption (Text), image (Image)"
    )
    assert errors["caption"][1].startswith(
        "dataset 'tfds': option image='caption': feature 'caption' of kerastack_bars is Text, not Image"
    )
    assert errors["few"][1] == (
        "dataset 'tfds': 20 examples of kerastack_bars are too few for validation=0.5, test=0.49: the train split would be empty"
    )


@pytest.mark.slow
def test_images_and_texts_from_a_data_dir_train_export_int8_and_verify(prepared):
    image, text = prepared[2]
    for done in (image, text):
        assert done["files"] == ["labels.txt", "model.json", "model_int8.tflite"]
        assert (
            done["labels"] == ["bright", "dark"] == done["model_json"]["class_names"] == done["embedded"]["class_names"]
        )
        assert done["verify"]["agreement"] >= 0.9 and done["verify"]["samples"] == 12, done["verify"]
    assert image["run"]["spec"]["input_shape"] == [16, 16, 3]
    assert image["model_json"]["normalization"]["scale"] == pytest.approx(1 / 255)
    assert text["run"]["spec"]["input_shape"] == [6]
    assert {"sunny", "night"} <= set(text["model_json"]["vocabulary"])


def test_cli_an_unknown_name_exits_2_with_did_you_mean_and_an_unreachable_download_exits_1(tmp_path):
    args = ["train", "--arch", "cnn", "--data", "tfds", "--out", tmp_path / "run"]
    env = {"KERAS_BACKEND": "jax", **OFFLINE}
    proc = run_cli(*args, "--data-opt", "name=mnistt", "--data-opt", f"data_dir={tmp_path / 'empty'}", env=env)
    assert one_line_error(proc, 2) == (
        "kerastack: error: dataset 'tfds': option name='mnistt': no such dataset in TensorFlow Datasets "
        "(did you mean 'mnist'?)"
    )
    empty = tmp_path / "empty"
    proc = run_cli(*args, "--data-opt", "name=mnist", "--data-opt", f"data_dir={empty}", env=env)
    # Before the download, a note says where it goes (stderr: stdout is the command's result).
    note, _, error = proc.stderr.partition("\n")
    assert (
        note == f"tfds: mnist is not in {empty}: downloading and preparing it there (TFDS's cache, read from then on)"
    )
    proc.stderr = error
    message = one_line_error(proc, 1)
    assert message.startswith("kerastack: error: dataset 'tfds': cannot download TFDS dataset 'mnist' (")
    assert message.endswith(
        f"on a connected machine run `tfds build mnist --data_dir DIR`, then copy DIR/mnist into {empty}"
    )
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_cli_reads_the_prepared_data_dir_from_a_fresh_process_and_names_a_bad_feature(prepared, tmp_path):
    """A process that never saw the builder's class finds the dataset by name in its data_dir (TFDS's
    read-only builder), features and all: the case of a dataset prepared on another machine."""
    data_dir = prepared[0]
    args = [
        "train",
        "--arch",
        "cnn",
        "--data",
        "tfds",
        "--data-opt",
        f"name={NAME}",
        "--data-opt",
        f"data_dir={data_dir}",
    ]
    proc = run_cli(
        *args, "--data-opt", "image=picture", "--out", tmp_path / "run", env={"KERAS_BACKEND": "jax", **OFFLINE}
    )
    assert one_line_error(proc, 2) == (
        "kerastack: error: dataset 'tfds': option image='picture': no such feature in kerastack_bars; "
        "features: caption, image, label, score"
    )
    assert not (tmp_path / "run").exists()


# A dataset of images and their segmentation masks, prepared and read in one TensorFlow process.
MASKS = """
import json, sys
import numpy as np
import tensorflow_datasets as tfds

class KerastackSpots(tfds.core.GeneratorBasedBuilder):
    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        features = tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(None, None, 3)),
            "segmentation_mask": tfds.features.Image(shape=(None, None, 1)),
        })
        return tfds.core.DatasetInfo(builder=self, features=features)

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(24)}

    def _generate_examples(self, n):
        rng = np.random.default_rng(0)
        for i in range(n):
            m = np.zeros((20 + i % 3, 24), "uint8")  # sizes vary: masks are resized with their images
            top, left = rng.integers(0, 10, 2)
            m[top : top + 9, left : left + 10] = 1 + i % 2
            yield i, {"image": np.stack([np.array([20, 230, 120], "uint8")[m]] * 3, -1), "segmentation_mask": m[..., None]}

data_dir = sys.argv[1]
KerastackSpots(data_dir=data_dir).download_and_prepare()

from core.data import spec_of
from plugins.datasets.tfds import load
data = load("kerastack_spots", data_dir=data_dir, mask="segmentation_mask", classes="bg,bright,grey", size=16,
            batch_size=4, validation=0.25, test=0.25)
x, y = data.train[0]
level = x[..., 0]
facts = {"task": data.task, "names": data.class_names, "classes": spec_of(data).num_classes,
         "x": [list(x.shape), str(x.dtype)], "y": [list(y.shape), str(y.dtype)],
         "means": [float(level[y == c].mean()) for c in range(3)],
         "batches": [len(s) for s in (data.train, data.validation, data.test)]}
errors = []
for options, read in (({"mask": "image", "classes": "a,b", "size": 16}, False), ({"mask": "segmentation_mask",
                      "classes": "bg,bright", "size": 16, "batch_size": 4}, True)):
    try:
        loaded = load("kerastack_spots", data_dir=data_dir, **options)
        if read:
            [loaded.train[i] for i in range(len(loaded.train))]
    except Exception as exc:
        errors.append(str(exc))
facts["errors"] = errors
json.dump(facts, open(sys.argv[2], "w"))
"""


def test_a_mask_feature_makes_a_segmentation_dataset(tmp_path):
    run_python(MASKS, tmp_path / "data", tmp_path / "facts.json", env={"KERAS_BACKEND": "tensorflow", **OFFLINE})
    facts = read_json(tmp_path / "facts.json")
    assert (facts["task"], facts["names"], facts["classes"]) == ("segmentation", ["bg", "bright", "grey"], 3)
    assert facts["x"] == [[4, 16, 16, 3], "float32"] and facts["y"] == [[4, 16, 16], "int32"]
    means = facts["means"]  # each mask lies on its own image: every class has its own brightness
    assert means[0] < 0.15 and means[1] > 0.75 and abs(means[2] - 120 / 255) < 0.1, means
    assert facts["batches"] == [3, 2, 2]
    assert facts["errors"][0].startswith(
        "dataset 'tfds': option mask='image': feature 'image' of kerastack_spots is Image of shape (None, None, 3), "
        "not a one-channel Image of class indices"
    ), facts["errors"]
    assert facts["errors"][1] == (
        "dataset 'tfds': a mask of kerastack_spots holds class index 2; the 2 classes (bg, bright) take 0..1"
    )
    with pytest.raises(UsageError, match=r"option mask='segmentation_mask' needs --data-opt classes=NAME,NAME"):
        load("kerastack_spots", mask="segmentation_mask")
