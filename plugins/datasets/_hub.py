"""What the hub datasets (``tfds``, ``hf``, ``keras_datasets``) share: the skeleton of their
``load`` (``load_hub``: options checked, the source opened and its splits chosen, input and classes
resolved, texts as arrays or images streamed), turning a stored image into the model's input,
streaming rows by index, and the one-line errors for a name that is not known and a download that
cannot be made. Each loader subclasses ``Hub`` with what differs. Not a plugin (the leading ``_``)."""

from dataclasses import dataclass

# Images arrive as 8-bit pixels and are divided by 255, as image_folder does: model.json records it.
PIXELS = {"scale": 1 / 255, "offset": 0.0, "raw_range": [0, 255]}


@dataclass
class HubOptions:
    """The options of a hub loader's ``load`` that the skeleton reads (see ``hf.load``). With a
    ``test_split`` that split is the test split, so no ``test`` share is cut from ``split``."""

    owner: str
    split: str = "train"
    test_split: str = ""
    image: str = ""
    text: str = ""
    label: str = ""
    size: int = 0
    channels: int = 0
    max_tokens: int = 5000
    length: int = 64
    samples: int = 0
    batch_size: int = 32
    validation: float = 0.15
    test: float = 0.15
    seed: int = 0

    def __post_init__(self):
        if self.test_split:
            self.test = 0


class Hub:
    """One hub as ``load_hub`` reads it; a loader's subclass says what differs. ``name`` names the
    dataset in messages; ``own_size``: 0 for ``size`` or ``channels`` means the images' own."""

    name = ""
    own_size = False
    task = "classification"  # "segmentation" where the targets are masks (tfds's mask option)

    def __init__(self, options):
        self.options = options

    def check(self):
        """Check the options before anything is opened."""
        o = self.options
        check_common(
            o.owner, validation=o.validation, test=o.test, samples=o.samples, batch_size=o.batch_size,
            size=o.size, channels=o.channels, max_tokens=o.max_tokens, length=o.length, image=o.image,
            text=o.text, own_size=self.own_size,
        )  # fmt: skip

    def open(self):
        """Open the source (downloading it if need be); return the names of its splits."""
        raise NotImplementedError

    def inputs(self):
        """``(image, text, class_names)``: the input (one of the two is "") and the classes' names."""
        raise NotImplementedError

    def texts(self, split, text):
        """``(texts, labels)`` of split ``split``'s ``text`` input, for ``text_dataset``."""
        raise NotImplementedError

    def text_dataset(self, text, class_names):
        """The Dataset of texts as token ids (``text.dataset``), the test split a split of its own
        with ``test_split``."""
        from plugins.datasets.text import dataset

        o = self.options
        data = dataset(
            *self.texts(o.split, text), class_names, o.max_tokens, o.length, o.validation, o.test, o.seed, o.owner
        )
        if o.test_split:
            text_test_split(data, *self.texts(o.test_split, text), o.length)
        return data

    def image_splits(self, image):
        """``(train, validation, test)``: PyDatasets streaming the ``image`` input as pixels."""
        raise NotImplementedError


def load_hub(hub):
    """The skeleton of a hub loader's ``load``: options checked, the source opened and ``split``
    (and ``test_split``) chosen among its splits, input and classes resolved; then a classification
    Dataset of texts (``Hub.text_dataset``) or of streamed images, in [0, 1] (``PIXELS``)."""
    from core import Dataset

    o = hub.options
    hub.check()
    choose_splits(o.owner, o.split, o.test_split, list(hub.open()), hub.name)
    image, text, class_names = hub.inputs()
    if text:
        return hub.text_dataset(text, class_names)
    data = Dataset(*hub.image_splits(image), task=hub.task, class_names=tuple(class_names))
    data.normalization = PIXELS
    return data


def check_image_options(owner, size, channels, own=False):
    """``size`` in [4, 1024] and ``channels`` 1 or 3; with ``own``, 0 for either means the dataset's own."""
    from core import UsageError
    from plugins.datasets._checks import check_range

    if not (own and size == 0):
        check_range(owner, "size", size, 4, 1024, why=" (0: the images' own size)" if own else "")
    if channels not in ((0, 1, 3) if own else (1, 3)):
        valid = "0 (as stored), 1 (grayscale), 3 (RGB)" if own else "1 (grayscale), 3 (RGB)"
        raise UsageError(f"{owner}: option channels={channels}: valid: {valid}")


def to_pixels(image, size, channels):
    """One image as float32 in [0, 1], shape (size, size, channels), resized with Pillow's bilinear
    filter (as image_folder reads files). ``image`` is an 8-bit array (H, W), (H, W, 1|3|4), a PIL
    image, or a ``{"bytes": ...}`` / ``{"path": ...}`` record of an encoded file (Arrow, Parquet)."""
    import io

    import numpy as np
    from PIL import Image

    if isinstance(image, dict):  # an Image column read without its feature type: encoded bytes
        image = Image.open(io.BytesIO(image["bytes"])) if image.get("bytes") else Image.open(image["path"])
    if isinstance(image, np.ndarray):
        if image.ndim == 3 and image.shape[-1] == 1:
            image = image[..., 0]
        if image.shape[:2] == (size, size) and (image.ndim == 2) == (channels == 1):
            x = image.astype("float32") / 255.0  # already right: no round trip through Pillow
            return x[..., None] if channels == 1 else x
        image = Image.fromarray(image)
    image = image.convert("L" if channels == 1 else "RGB")
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BILINEAR)
    x = np.asarray(image, dtype="float32") / 255.0
    return x[..., None] if channels == 1 else x


def streamed(splits, labels, read, batch_size, seed, read_target=None):
    """``(train, validation, test)`` PyDatasets of rows by index (``_streaming.FileBatches`` with
    row numbers for paths): ``read(row)`` gives one input; only the train split is reshuffled. With
    ``read_target`` (``labels`` None) each row's target is read too: a segmentation mask."""
    from plugins.datasets._streaming import FileBatches  # imports keras

    def split(rows, shuffle):
        if rows is None:
            return None
        targets = [0] * len(rows) if labels is None else [labels[r] for r in rows]
        return FileBatches(
            [int(r) for r in rows],
            targets,
            read,
            batch_size=batch_size,
            shuffle=shuffle,
            seed=seed,
            read_target=read_target,
        )

    train, val, test = splits
    return split(train, True), split(val, False), split(test, False)


def text_test_split(data, texts, labels, length):
    """Set ``data.test`` to ``texts`` as token ids of ``data.vocabulary`` (that of its train split,
    see ``text.dataset``) and their int32 ``labels``: a dataset's own test split of texts."""
    import numpy as np

    from tflite.text import Tokenizer

    data.test = (Tokenizer(data.vocabulary, length).encode(texts), np.asarray(labels, dtype="int32"))


def check_common(
    owner, *, validation, test, samples, batch_size, size, channels, max_tokens, length, image, text, own_size=False
):
    """The options ``tfds`` and ``hf`` share, checked before anything is opened (``own_size``: 0 for
    ``size`` or ``channels`` means the images' own)."""
    from core import UsageError
    from plugins.datasets._checks import check_fractions, check_range
    from plugins.datasets.text import check_options

    check_fractions(owner, validation=validation, test=test)
    check_range(owner, "samples", samples, 0, why=" (0: all)")
    check_range(owner, "batch_size", batch_size, 1)
    check_image_options(owner, size, channels, own=own_size)
    check_options(max_tokens, length, owner)
    if image and text:
        raise UsageError(f"{owner}: options image={image!r} and text={text!r}: give one of them (the model's input)")


def choose_splits(owner, split, test_split, splits, name):
    """``split``, and ``test_split`` if given (another split than ``split``), among ``splits``."""
    from core import UsageError

    choose(owner, "split", split, splits, f"split of {name}")
    if test_split:
        if test_split == split:
            raise UsageError(
                f"{owner}: option test_split={test_split!r} is the training split too; give another split, or none"
            )
        choose(owner, "test_split", test_split, splits, f"split of {name}")


def field(owner, option, value, fields, kind, where):
    """``value`` if it is one of ``fields`` (columns, features); else a usage error naming the
    option, with did-you-mean and the fields listed in their order."""
    from core import UsageError, did_you_mean

    if value not in fields:
        raise UsageError(
            f"{owner}: option {option}={value!r}: no such {kind} in {where}{did_you_mean(value, fields)}; "
            f"{kind}s: {', '.join(fields)}"
        )
    return value


def first_line(exc):
    """The first line of ``exc``'s message, or its type's name when it has none."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def choose(owner, option, value, choices, what):
    """``value`` if it is one of ``choices``; else a usage error naming the option, with did-you-mean
    and the choices listed."""
    from core import UsageError, choices_text, did_you_mean

    if value not in choices:
        raise UsageError(
            f"{owner}: option {option}={value!r}: no such {what}{did_you_mean(value, choices)}; "
            f"valid: {choices_text(choices)}"
        )
    return value


def cannot_download(owner, what, exc, fetch):
    """The one-line error (exit 1) for a download that failed: what, why (first line), how to fetch it."""
    from core import KerastackError, one_line

    reason = one_line(exc, first=True)
    if len(reason) > 200:
        reason = reason[:200] + "..."
    return KerastackError(f"{owner}: cannot download {what} ({reason}); {fetch}")
