"""``keras_datasets``: MNIST, Fashion-MNIST, CIFAR-10/100 and IMDB from ``keras.datasets``, read
from Keras's own cache (``KERAS_HOME/datasets``), downloaded there by Keras when absent."""

from core import hookimpl
from plugins.datasets._hub import Hub

OWNER = "dataset 'keras_datasets'"
URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
CIFAR = "https://www.cs.toronto.edu/~kriz/"
# name → (what Keras keeps under KERAS_HOME/datasets once downloaded, where it comes from)
CACHE = {
    "mnist": ("mnist.npz", URL + "mnist.npz"),
    "fashion_mnist": ("fashion-mnist", URL + "{train,t10k}-{labels-idx1,images-idx3}-ubyte.gz"),
    "cifar10": ("cifar-10-batches-py-target", CIFAR + "cifar-10-python.tar.gz"),
    "cifar100": ("cifar-100-python-target", CIFAR + "cifar-100-python.tar.gz"),
    "imdb": ("imdb.npz", URL + "imdb.npz"),
}
NAMES = tuple(CACHE)
FASHION = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
CIFAR10 = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
FASHION_FILES = (
    "train-labels-idx1-ubyte.gz",
    "train-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
)
IMDB_START, IMDB_OOV, IMDB_INDEX_FROM = 1, 2, 3  # keras.datasets.imdb's defaults: 0 is padding


@hookimpl
def register_datasets(register):
    register(
        "keras_datasets",
        load,
        summary="keras.datasets by name (--data-opt name=mnist|fashion_mnist|cifar10|cifar100|imdb), "
        "from Keras's cache (KERAS_HOME/datasets)",
    )


def load(
    name="mnist", size=0, channels=0, max_tokens=10000, length=200, samples=0, batch_size=32, validation=0.1, seed=0
):
    """The dataset's own test split is the test split; ``validation`` of its train split (stratified,
    fixed by ``seed``) is the validation split. ``samples`` > 0 keeps the first ``samples`` of each.

    Images (all but imdb) stream as ``keras.utils.PyDataset`` batches of ``batch_size`` (training's
    ``--batch-size``): float32 in [0, 1], resized to ``size`` × ``size`` and converted to ``channels``
    (0: as stored, 28×28×1 for the MNISTs, 32×32×3 for the CIFARs). ``imdb`` gives int32 token ids
    of shape (``length``,): Keras's word ids (1 starts a review, 2 is a word beyond the
    ``max_tokens`` most frequent, 0 pads the end), cut at ``length``.

    Files are read from Keras's cache, ``KERAS_HOME/datasets`` (default ``~/.keras/datasets``), in
    the layout ``keras.datasets`` leaves there; absent, Keras downloads them. Those files hold whole
    uint8 arrays, read whole (MNIST 55 MB, CIFAR-10 184 MB): only the float32 inputs are made a batch at
    a time.
    """
    from plugins.datasets._hub import HubOptions, load_hub

    options = HubOptions(
        OWNER, split="train", test_split="test", size=size, channels=channels, max_tokens=max_tokens, length=length,
        samples=samples, batch_size=batch_size, validation=validation, seed=seed,
    )  # fmt: skip
    return load_hub(KerasHub(options, name))


class KerasHub(Hub):
    """A ``keras.datasets`` set for ``load_hub``: its train and test splits, read whole from the cache."""

    own_size = True

    def __init__(self, options, name):
        super().__init__(options)
        self.name, self.arrays, self.class_names = name, None, ()

    def check(self):
        from plugins.datasets._checks import check_fractions, check_range
        from plugins.datasets._hub import check_image_options, choose

        o = self.options
        choose(OWNER, "name", self.name, NAMES, "dataset in keras.datasets")
        check_fractions(OWNER, validation=o.validation)
        check_range(OWNER, "samples", o.samples, 0, why=" (0: all)")
        check_range(OWNER, "batch_size", o.batch_size, 1)
        if self.name == "imdb":
            check_range(OWNER, "max_tokens", o.max_tokens, IMDB_INDEX_FROM + 1)
            check_range(OWNER, "length", o.length, 1, 100_000)
        else:
            check_image_options(OWNER, o.size, o.channels, own=True)

    def open(self):
        """Read the arrays (the first ``samples`` of each split); cut the validation rows from train."""
        import numpy as np

        from core import UsageError
        from plugins.datasets._files import split_indices

        o = self.options
        (x_train, y_train), (x_test, y_test), self.class_names = read(self.name)
        if o.samples:
            x_train, y_train, x_test, y_test = (a[: o.samples] for a in (x_train, y_train, x_test, y_test))
        y_train = np.asarray(y_train, "int32").reshape(-1)
        y_test = np.asarray(y_test, "int32").reshape(-1)
        rows = split_indices(len(y_train), {"validation": o.validation}, o.seed, OWNER, "samples", labels=y_train)
        if len(y_test) == 0:
            raise UsageError(f"{OWNER}: the {self.name} test split is empty")
        self.arrays = (x_train, y_train, x_test, y_test, rows)
        return ("train", "test")

    def inputs(self):
        return ("", "reviews", self.class_names) if self.name == "imdb" else ("images", "", self.class_names)

    def text_dataset(self, text, class_names):
        """imdb: Keras's word ids as they are (not text_csv's vocabulary), in arrays."""
        from core import Dataset

        o = self.options
        x_train, y_train, x_test, y_test, (train, val) = self.arrays
        x_train = token_ids(x_train, o.max_tokens, o.length)
        data = Dataset(
            train=(x_train[train], y_train[train]),
            validation=None if val is None else (x_train[val], y_train[val]),
            test=(token_ids(x_test, o.max_tokens, o.length), y_test),
            task="classification",
            class_names=class_names,
            vocab_size=o.max_tokens,
        )
        vocabulary = imdb_vocabulary(o.max_tokens)
        if vocabulary is not None:
            data.vocabulary = vocabulary
        return data

    def image_splits(self, image):
        o = self.options
        x_train, y_train, x_test, y_test, rows = self.arrays
        own = x_train.shape[1:]
        size = o.size or own[0]
        channels = o.channels or (own[2] if len(own) == 3 else 1)
        return image_splits(x_train, y_train, x_test, y_test, rows, size, channels, o.batch_size, o.seed)


def image_splits(x_train, y_train, x_test, y_test, rows, size, channels, batch_size, seed):
    """``(train, validation, test)``: PyDatasets over the uint8 arrays, converted batch by batch."""
    import numpy as np

    from plugins.datasets._hub import streamed, to_pixels
    from plugins.datasets._streaming import FileBatches

    train, val = rows
    split_train, split_val, _ = streamed(
        (train, val, None), y_train, lambda i: to_pixels(x_train[i], size, channels), batch_size, seed
    )
    test = FileBatches(
        np.arange(len(y_test)).tolist(), y_test, lambda i: to_pixels(x_test[i], size, channels), batch_size=batch_size
    )
    return split_train, split_val, test


def keras_home():
    """Where Keras keeps its files: ``$KERAS_HOME``, else ``~/.keras`` (``/tmp/.keras`` if that is
    not writable), as ``keras.utils.get_file`` decides."""
    import os
    import tempfile

    home = os.path.expanduser(os.environ.get("KERAS_HOME", os.path.join("~", ".keras")))
    if os.path.exists(home) and not os.access(home, os.W_OK):
        home = os.path.join("/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir(), ".keras")
    return home


def cache_path(name):
    from pathlib import Path

    return Path(keras_home()) / "datasets" / CACHE[name][0]


def read(name):
    """``((x_train, y_train), (x_test, y_test), class_names)`` from Keras's cache; Keras downloads
    the files first where they are not there."""
    path = cache_path(name)
    if not path.exists():
        download(name)
    import pickle

    try:
        return READERS[name](path)
    except (OSError, KeyError, ValueError, EOFError, pickle.UnpicklingError) as exc:
        from core import KerastackError, one_line

        raise KerastackError(
            f"{OWNER}: cannot read {name} from {path} ({one_line(exc, first=True)}); delete it to download it again"
        ) from None


def download(name):
    """``keras.datasets.NAME.load_data()``: it downloads into the cache (and unpacks archives)."""
    import importlib

    from plugins.datasets._hub import cannot_download

    module = importlib.import_module(f"keras.datasets.{name}")
    url, path = CACHE[name][1], cache_path(name)
    if url.endswith(".tar.gz"):
        put = f"unpack it into {path}"
    elif "{" in url:
        put = f"put the four files in {path}"
    else:
        put = f"put it at {path}"
    try:
        module.load_data()
    except Exception as exc:
        raise cannot_download(OWNER, name, exc, f"fetch {url} on a connected machine and {put}") from None


def read_mnist(path):
    import numpy as np

    with np.load(path, allow_pickle=False) as f:
        arrays = (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])
    return (*arrays, tuple(str(d) for d in range(10)))


def read_fashion_mnist(folder):
    import gzip

    import numpy as np

    def array(file, offset):
        with gzip.open(folder / file, "rb") as f:
            return np.frombuffer(f.read(), np.uint8, offset=offset)

    y_train, x_train, y_test, x_test = (array(f, 16 if "images" in f else 8) for f in FASHION_FILES)
    return (x_train.reshape(len(y_train), 28, 28), y_train), (x_test.reshape(len(y_test), 28, 28), y_test), FASHION


def read_cifar10(folder):
    import numpy as np

    root = folder / "cifar-10-batches-py"
    parts = [cifar_batch(root / f"data_batch_{i}", "labels") for i in range(1, 6)]
    train = np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts])
    meta = root / "batches.meta"
    names = tuple(n.decode() for n in unpickle(meta)[b"label_names"]) if meta.exists() else CIFAR10
    return train, cifar_batch(root / "test_batch", "labels"), names


def read_cifar100(folder):
    root = folder / "cifar-100-python"
    meta = root / "meta"
    names = tuple(n.decode() for n in unpickle(meta)[b"fine_label_names"]) if meta.exists() else None
    train, test = cifar_batch(root / "train", "fine_labels"), cifar_batch(root / "test", "fine_labels")
    return train, test, names or tuple(str(i) for i in range(100))


def cifar_batch(file, label_key):
    """``(x uint8 (n, 32, 32, 3), y)`` of one pickled CIFAR batch, read as ``keras.datasets`` does."""
    import numpy as np

    d = unpickle(file)
    x = np.asarray(d[b"data"], dtype="uint8").reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return x, np.asarray(d[label_key.encode()])


def unpickle(file):
    """A CIFAR pickle, with Keras's restricted unpickler (numpy arrays only, no code)."""
    from keras.src.datasets.cifar import RestrictedUnpickler

    with open(file, "rb") as f:
        return RestrictedUnpickler(f, encoding="bytes").load()


def read_imdb(path):
    from keras.src.datasets import npz_utils

    f = npz_utils.load_npz(str(path))  # object arrays, through Keras's restricted unpickler
    return (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"]), ("negative", "positive")


READERS = {
    "mnist": read_mnist,
    "fashion_mnist": read_fashion_mnist,
    "cifar10": read_cifar10,
    "cifar100": read_cifar100,
    "imdb": read_imdb,
}


def token_ids(reviews, max_tokens, length):
    """int32 (n, ``length``): each review's word ids as ``keras.datasets.imdb.load_data(num_words=
    max_tokens)`` gives them (start mark, ids shifted by 3, rare words as 2), cut or padded with 0 at the end."""
    import numpy as np

    out = np.zeros((len(reviews), length), dtype="int32")
    for row, words in enumerate(reviews):
        ids = [IMDB_START] + [w + IMDB_INDEX_FROM for w in list(words)[: length - 1]]
        ids = [i if i < max_tokens else IMDB_OOV for i in ids]
        out[row, : len(ids)] = ids
    return out


def imdb_vocabulary(max_tokens):
    """The tokens by id (``<pad>``, ``<start>``, ``<oov>``, then the words), from Keras's
    ``imdb_word_index.json`` where it is in the cache; else None (it is not needed for training)."""
    import json

    path = cache_path("imdb").with_name("imdb_word_index.json")
    if not path.exists():
        return None
    index = json.loads(path.read_text())
    vocabulary = ["<pad>", "<start>", "<oov>"] + ["<unused>"] * (max_tokens - IMDB_INDEX_FROM)
    for word, i in index.items():
        if i + IMDB_INDEX_FROM < max_tokens:
            vocabulary[i + IMDB_INDEX_FROM] = word
    return vocabulary
