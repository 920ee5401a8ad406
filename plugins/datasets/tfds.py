"""``tfds``: a TensorFlow Datasets dataset by name, read from its ``data_dir`` (downloaded and
prepared there by TFDS when absent). Image features stream from the TFRecord files; text features
become token ids as text_csv's do."""

import contextlib
import sys
from functools import partial

from core import hookimpl
from plugins.datasets._hub import Hub, field

OWNER = "dataset 'tfds'"
# TFDS retries a failed download 10 times with a growing backoff: offline that took 3.5 minutes
# (measured) before the error. Two retries still ride out a blip.
DOWNLOAD_RETRIES = 2
SHUFFLE_BUFFER = 1024  # examples: tf.data's shuffle of the train split (plus file order, per epoch)


@hookimpl
def register_datasets(register):
    register(
        "tfds",
        load,
        summary="TensorFlow Datasets by name (--data-opt name=NAME [data_dir=DIR]), from its data_dir",
    )


def load(
    name="",
    split="train",
    data_dir="",
    test_split="",
    image="",
    text="",
    label="",
    size=0,
    channels=0,
    max_tokens=5000,
    length=64,
    samples=0,
    batch_size=32,
    validation=0.15,
    test=0.15,
    seed=0,
    mask="",
    classes="",
    boxes="",
    max_boxes=0,
):
    """Split ``split`` of TFDS dataset ``name`` (``NAME``, ``NAME/CONFIG`` or ``NAME:VERSION``) in
    ``data_dir`` (default: ``$TFDS_DATA_DIR``, else ``~/tensorflow_datasets``), its first ``samples``
    examples if > 0 (TFDS shuffled them when it prepared the files), cut into train, ``validation``
    and ``test``: consecutive runs of examples for images (read as TFDS slices, ``train[:850]``),
    a split stratified by class for texts. With ``test_split`` (e.g. ``test``), that split (its
    first ``samples``) is the test split, and only ``validation`` is cut from ``split``.

    Inputs are feature ``image`` or ``text``; unset, the dataset's supervised input if it is an
    image or a text, else its first image feature, else its first text feature. Classes are the
    ``ClassLabel`` feature ``label`` (unset: the supervised target, else the first ``ClassLabel``),
    with its names.

    Images stream as ``keras.utils.PyDataset`` batches of ``batch_size`` (training's
    ``--batch-size``): float32 in [0, 1], resized to ``size`` × ``size`` and converted to ``channels``
    (0: the feature's own, where all its images have one). A TFRecord file has no random access, so
    a batch is the next of the stream whichever index is asked for: an epoch still reads each
    example once, shuffled anew (files and a 1024-example buffer) at each epoch's start; the
    validation and test splits are read in order. Texts are int32 token ids of ``length`` from the
    ``max_tokens`` most frequent words of the train split.

    ``mask`` (an ``Image`` feature of class indices, e.g. ``segmentation_mask``) makes it a
    segmentation dataset: the masks are the targets, int32 (size, size) resized to the nearest pixel,
    and ``classes`` names the indices in order (``classes=background,pet,border``).

    ``boxes`` (a ``BBoxFeature``, e.g. ``objects/bbox`` in voc or coco) makes it a detection
    dataset: targets float32 (N, max_boxes, 5), ``x_min, y_min, x_max, y_max`` relative (TFDS's
    ``[ymin, xmin, ymax, xmax]`` reordered) and the class id, padding rows of class -1
    (``max_boxes`` 0: the most in any example); each box's class is the ``ClassLabel`` beside it
    (``objects/label``), or ``label``, with its names. The boxes are read (images undecoded) and
    checked before training: boxes past the image clipped, those of zero area dropped, each counted
    in a warning.
    """
    from plugins.datasets._hub import HubOptions, load_hub

    options = HubOptions(
        OWNER, split=split, test_split=test_split, image=image, text=text, label=label, size=size,
        channels=channels, max_tokens=max_tokens, length=length, samples=samples, batch_size=batch_size,
        validation=validation, test=test, seed=seed,
    )  # fmt: skip
    return load_hub(TfdsHub(options, name, data_dir, mask, classes, boxes, max_boxes))


class TfdsHub(Hub):
    """A TFDS dataset for ``load_hub``: splits read as slices of the first ``samples`` examples."""

    own_size = True

    def __init__(self, options, name, data_dir, mask="", classes="", boxes="", max_boxes=0):
        super().__init__(options)
        self.name, self.data_dir = name, data_dir
        self.builder, self.label = None, ""
        self.mask, self.classes = mask, tuple(c.strip() for c in str(classes).split(",") if c.strip())
        self.boxes, self.max_boxes, self.box_paths = boxes, max_boxes, None
        self.task = "segmentation" if mask else "detection" if boxes else "classification"

    def check(self):
        if not self.name:
            raise _usage("option name is not set; give a TensorFlow Datasets name, e.g. --data-opt name=mnist")
        if self.mask and len(self.classes) < 2:
            raise _usage(
                f"option mask={self.mask!r} needs --data-opt classes=NAME,NAME,... (the class of each mask index, "
                "in order; at least 2)"
            )
        if self.mask and self.options.text:
            raise _usage(f"option mask={self.mask!r} segments images; drop text={self.options.text!r}")
        if self.boxes and (self.mask or self.options.text):
            drop = f"mask={self.mask!r}" if self.mask else f"text={self.options.text!r}"
            raise _usage(f"option boxes={self.boxes!r} detects objects in images; drop {drop}")
        if self.boxes:
            from plugins.datasets._detection import check_detection_options

            check_detection_options(OWNER, self.max_boxes)
        super().check()

    def open(self):
        self.builder = prepared_builder(self.name, self.data_dir)
        return self.builder.info.splits

    def inputs(self):
        o, info = self.options, self.builder.info
        if self.mask:
            self.label = mask_feature(info, self.mask, self.name)
            return input_feature(info, o.image, "", self.name, besides=self.label)[0], "", self.classes
        if self.boxes:
            from plugins.datasets._tfds_boxes import box_features, class_names

            self.box_paths = box_features(info, self.boxes, o.label, self.name)
            self.label = "tfds_id"  # the stream finds each example's boxes by it
            return input_feature(info, o.image, "", self.name)[0], "", class_names(info, self.box_paths[1])
        image, text = input_feature(info, o.image, o.text, self.name)
        self.label = label_feature(info, o.label, self.name)
        return image, text, tuple(info.features[self.label].names)

    def count(self, split):
        """Examples of ``split`` read: all, or the first ``samples``."""
        n = self.builder.info.splits[split].num_examples
        return min(n, self.options.samples) if self.options.samples else n

    def texts(self, split, text):
        return read_texts(self.builder, f"{split}[:{self.count(split)}]", text, self.label)

    def image_splits(self, image):
        o = self.options
        size, channels = image_size(self.builder.info.features[image].shape, o.size, o.channels, image, self.name)
        targets = partial(read_mask, size=size, names=self.classes, where=self.name) if self.mask else None
        counts = split_counts(self.count(o.split), o.validation, o.test, self.name)
        starts = [0, counts[0], counts[0] + counts[1]]
        slices = [None if n == 0 else f"{o.split}[{start}:{start + n}]" for start, n in zip(starts, counts)]
        if o.test_split:
            counts[2] = self.count(o.test_split)
            slices[2] = f"{o.test_split}[:{counts[2]}]"
        if self.boxes:
            from plugins.datasets._tfds_boxes import read_boxes

            y, rows = read_boxes(self.builder, slices, image, *self.box_paths, self.max_boxes, self.name)
            targets = lambda tfds_id: y[rows[tfds_id]]  # noqa: E731
        stream = partial(Stream, self.builder, image=image, label=self.label, shape=(size, channels),
                         batch_size=o.batch_size, seed=o.seed, read_target=targets)  # fmt: skip
        return [
            None if part is None else stream(part, n, shuffle=(i == 0))
            for i, (part, n) in enumerate(zip(slices, counts))
        ]


def image_size(shape, size, channels, image, name):
    """``(size, channels)`` of the model's input: those given, else the feature's own (its one
    square size; its channels where 1 or 3, else 3)."""
    if not size:
        if shape[0] is None or shape[0] != shape[1]:
            raise _usage(
                f"{name}'s images have no one square size (feature {image!r}: shape {shape}); give --data-opt size=N"
            )
        size = shape[0]
    return size, channels or (shape[2] if shape[2] in (1, 3) else 3)


def prepared_builder(name, data_dir):
    """The TFDS builder of ``name``, its files prepared in ``data_dir`` (downloaded now if not)."""
    import tensorflow_datasets as tfds

    from plugins.datasets._hub import cannot_download, first_line

    try:
        with _quiet():  # absl warns of a dataset's folder without files: it is not prepared yet, as said below
            builder = tfds.builder(name, data_dir=data_dir or None)
            prepared = builder.is_prepared()
    except tfds.core.registered.DatasetNotFoundError:
        raise _usage(f"option name={name!r}: no such dataset in TensorFlow Datasets{_close(name, data_dir)}") from None
    except (ValueError, AssertionError) as exc:  # a config or version that is not there
        raise _usage(f"option name={name!r}: {first_line(exc)}") from None
    if prepared:
        return builder
    from tensorflow_datasets.core.download import downloader

    root = data_dir or _default_data_dir()
    retries, downloader.MAX_RETRIES = downloader.MAX_RETRIES, DOWNLOAD_RETRIES
    print(
        f"tfds: {name} is not in {root}: downloading and preparing it there (TFDS's cache, read from then on)",
        file=sys.stderr,
    )
    try:
        with _quiet():
            builder.download_and_prepare()
    except Exception as exc:
        raise cannot_download(
            OWNER,
            f"TFDS dataset {name!r}",
            exc,
            f"on a connected machine run `tfds build {name} --data_dir DIR`, then copy DIR/{builder.name} into {root}",
        ) from None
    finally:
        downloader.MAX_RETRIES = retries
    return builder


def input_feature(info, image, text, name, besides=""):
    """``(image, text)``: the feature given (checked), else the supervised input or the first
    ``Image`` or ``Text`` feature other than ``besides`` (a mask); one of the two is ""."""
    import tensorflow_datasets as tfds

    features = info.features
    if image or text:
        kind = tfds.features.Image if image else tfds.features.Text
        option = "image" if image else "text"
        feature = field(OWNER, option, image or text, sorted(features), "feature", name)
        if not isinstance(features[feature], kind):
            raise _usage(
                f"option {option}={feature!r}: feature {feature!r} of {name} is "
                f"{type(features[feature]).__name__}, not {kind.__name__} ({_described(info)})"
            )
        return image, text
    keys = list(info.supervised_keys[:1]) if info.supervised_keys else []
    candidates = [k for k in [*keys, *features] if isinstance(k, str) and k in features and k != besides]
    for kind, pick in ((tfds.features.Image, 0), (tfds.features.Text, 1)):
        for key in candidates:
            if isinstance(features[key], kind):
                return (key, "") if pick == 0 else ("", key)
    raise _usage(f"{name} has no image or text feature ({_described(info)}); kerastack reads those two kinds")


def mask_feature(info, mask, name):
    """Feature ``mask``, checked to be a one-channel ``Image`` (class indices)."""
    import tensorflow_datasets as tfds

    feature = field(OWNER, "mask", mask, sorted(info.features), "feature", name)
    kind = info.features[feature]
    if not isinstance(kind, tfds.features.Image) or kind.shape[-1] != 1:
        raise _usage(
            f"option mask={mask!r}: feature {mask!r} of {name} is {type(kind).__name__} of shape "
            f"{getattr(kind, 'shape', '?')}, not a one-channel Image of class indices ({_described(info)})"
        )
    return feature


def read_mask(pixels, size, names, where):
    """A mask feature's (H, W, 1) indices as int32 (size, size), to the nearest pixel; an index
    beyond ``names`` is an error naming the dataset."""
    from PIL import Image

    from core import KerastackError
    from plugins.datasets._images import mask_indices

    indices, largest = mask_indices(Image.fromarray(pixels[..., 0]), size)
    if largest >= len(names):
        raise KerastackError(
            f"{OWNER}: a mask of {where} holds class index {largest}; the {len(names)} classes "
            f"({', '.join(names)}) take 0..{len(names) - 1}"
        )
    return indices


def label_feature(info, label, name):
    """The ``ClassLabel`` feature given (checked), else the supervised target or the first ``ClassLabel``."""
    import tensorflow_datasets as tfds

    features = info.features
    if label:
        field(OWNER, "label", label, sorted(features), "feature", name)
        if not isinstance(features[label], tfds.features.ClassLabel):
            raise _usage(
                f"option label={label!r}: feature {label!r} of {name} is not a ClassLabel ({_described(info)})"
            )
        return label
    keys = list(info.supervised_keys[1:2]) if info.supervised_keys else []
    for key in [k for k in keys if isinstance(k, str) and k in features] + list(features):
        if isinstance(features[key], tfds.features.ClassLabel):
            return key
    raise _usage(f"{name} has no ClassLabel feature ({_described(info)}); kerastack trains classifiers on TFDS sets")


def split_counts(n, validation, test, name):
    """``[train, validation, test]`` example counts of ``n``: the shares rounded, train the rest."""
    counts = [0, round(n * validation), round(n * test)]
    counts[0] = n - counts[1] - counts[2]
    for what, count, share in zip(("train", "validation", "test"), counts, (1, validation, test)):
        if share and count < 1:
            raise _usage(
                f"{n} examples of {name} are too few for validation={validation}, test={test}: "
                f"the {what} split would be empty"
            )
    return counts


def read_texts(builder, split, text, label):
    """``(texts, labels)`` of a text split, read whole (texts are small beside images)."""
    import tensorflow_datasets as tfds

    texts, labels = [], []
    for example in tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)):
        value = example[text]
        texts.append(value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value))
        labels.append(int(example[label]))
    return texts, labels


def Stream(builder, split, count, image, label, shape, batch_size, shuffle, seed, read_target=None):  # noqa: N802
    """A ``keras.utils.PyDataset`` over TFDS slice ``split`` (``count`` examples), streamed: see
    ``_streaming.StreamBatches``; a train split (``shuffle``) is reshuffled at every pass (its files'
    order and a buffer of examples)."""
    from functools import partial

    from plugins.datasets._hub import to_pixels
    from plugins.datasets._streaming import StreamBatches  # imports keras

    def examples(number):
        import tensorflow_datasets as tfds

        # label "tfds_id": TFDS's own id of each example (detection finds its boxes by it)
        config = tfds.ReadConfig(shuffle_seed=seed + number, try_autocache=False, add_tfds_id=label == "tfds_id")
        ds = builder.as_dataset(split=split, shuffle_files=shuffle, read_config=config)
        if shuffle:
            ds = ds.shuffle(SHUFFLE_BUFFER, seed=seed + number, reshuffle_each_iteration=False)
        return tfds.as_numpy(ds.map(lambda ex: (ex[image], ex[label])).prefetch(2))

    read = partial(to_pixels, size=shape[0], channels=shape[1])
    return StreamBatches(examples, count, read, batch_size, shuffle, read_target=read_target)


@contextlib.contextmanager
def _quiet():
    """No retry warnings (urllib3) nor absl warnings meanwhile; no progress bars off a terminal.
    A failure is said once, in the error."""
    import logging
    import sys

    import tensorflow_datasets as tfds

    loggers = [logging.getLogger(name) for name in ("urllib3", "absl")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    if not sys.stderr.isatty():
        tfds.disable_progress_bar()
    yield  # not in a finally: after a failure, TFDS's download threads may still log their retries
    for logger, level in zip(loggers, levels):
        logger.setLevel(level)


def _default_data_dir():
    import os

    return os.environ.get("TFDS_DATA_DIR") or os.path.join(os.path.expanduser("~"), "tensorflow_datasets")


def _close(name, data_dir):
    """Did-you-mean among TFDS's registered datasets and those prepared in ``data_dir``."""
    from pathlib import Path

    import tensorflow_datasets as tfds

    from core import did_you_mean

    known = set(tfds.list_builders(with_community_datasets=False))
    root = Path(data_dir or _default_data_dir()).expanduser()
    if root.is_dir():
        known |= {d.name for d in root.iterdir() if d.is_dir() and d.name not in ("downloads",)}
    base = name.split(":")[0].split("/")[0]
    hint = did_you_mean(base, known)
    return hint or f" (none close among its {len(known)}; `tfds.list_builders()` lists them)"


def _described(info):
    return "features: " + ", ".join(f"{k} ({type(f).__name__})" for k, f in sorted(info.features.items()))


def _usage(message):
    from core import UsageError

    return UsageError(f"{OWNER}: {message}")
