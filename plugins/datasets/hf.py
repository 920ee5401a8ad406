"""``hf``: a Hugging Face ``datasets`` dataset — from the Hub by name (cached by ``datasets`` in
``HF_DATASETS_CACHE``), or a local folder (imagefolder: class subfolders; or data files) or a
parquet, CSV or JSON file. Image columns stream; text columns become token ids as text_csv's do."""

from core import hookimpl
from plugins.datasets._hub import Hub, field

OWNER = "dataset 'hf'"
FILE_BUILDERS = {".parquet": "parquet", ".csv": "csv", ".json": "json", ".jsonl": "json"}
LABEL_NAMES = ("label", "labels")  # a label column found without --data-opt label=


@hookimpl
def register_datasets(register):
    register(
        "hf",
        load,
        summary="Hugging Face datasets (--data-opt name=HUB_NAME|FOLDER|FILE.parquet): image or text columns "
        "and a label column",
    )


def load(
    name="",
    split="train",
    config="",
    test_split="",
    image="",
    text="",
    label="",
    cache_dir="",
    size=32,
    channels=3,
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
    box_format="xywh",
    max_boxes=0,
):
    """Split ``split`` of dataset ``name`` (``config``: the Hub dataset's configuration), ``samples``
    rows of it drawn at random if > 0, cut into train, ``validation`` and ``test`` (stratified by
    class, fixed by ``seed``). With ``test_split`` (e.g. ``test``), that split of the dataset is the
    test split (``samples`` rows of it), and only ``validation`` is cut from ``split``.

    Inputs are column ``image`` or column ``text``; unset, the first column of type ``Image`` (else
    the first string column) is taken. Classes are column ``label``: unset, the first ``ClassLabel``
    column, else a column called label or labels. A ``ClassLabel`` keeps its names; other labels are
    named by their values, sorted; rows without a label (None, or -1 as unlabelled test splits hold)
    are dropped. Images stream as ``keras.utils.PyDataset`` batches of ``batch_size`` (training's
    ``--batch-size``), float32 in [0, 1], ``size`` × ``size`` × ``channels`` (as image_folder reads
    files); texts are int32 token ids of ``length``, the ``max_tokens`` most frequent words of the
    train split (as text_csv encodes them, its vocabulary in model.json).

    ``mask`` (a column of images of class indices: grayscale or palette) makes it a segmentation
    dataset: the masks are the targets, resized to the nearest pixel, and ``classes`` names the
    indices in order (``background,person,car``); see ``load_masks``.

    ``boxes`` (a box feature: ``objects/bbox``, the field of a struct column, or a column of box
    lists) makes it a detection dataset: targets float32 (N, max_boxes, 5), ``x_min, y_min, x_max,
    y_max`` relative and the class id, padding rows of class -1 (``max_boxes`` 0: the most in any
    row). ``box_format`` is the stored boxes' Keras format: ``xywh`` (the default: COCO's ``[x, y,
    width, height]`` in pixels, as most Hub detection sets keep them), ``xyxy``, ``center_xywh``,
    ``yxyx``, ``center_yxhw``, or their ``rel_`` forms (relative to the image). The class of each
    box is ``label`` (``objects/category``; unset: the ``ClassLabel`` beside the boxes, else a field
    called category, label or class), named by its ``ClassLabel`` names, else ``classes``, else
    the ids. Boxes reaching outside their image are clipped, those of zero area dropped, each
    counted in a warning; a box that is not four numbers or a class that is not one of the classes
    is an error naming the row.
    """
    from plugins.datasets._hub import HubOptions, load_hub

    options = HubOptions(
        OWNER, split=split, test_split=test_split, image=image, text=text, label=label, size=size,
        channels=channels, max_tokens=max_tokens, length=length, samples=samples, batch_size=batch_size,
        validation=validation, test=test, seed=seed,
    )  # fmt: skip
    if mask and boxes:
        raise _usage(f"options mask={mask!r} and boxes={boxes!r}: give one of them (segmentation or detection)")
    if mask:
        return load_masks(HfHub(options, name, config, cache_dir), mask, classes)
    if boxes:
        return load_boxes(HfHub(options, name, config, cache_dir), boxes, label, box_format, classes, max_boxes)
    return load_hub(HfHub(options, name, config, cache_dir))


def load_masks(hub, mask, classes):
    """A segmentation Dataset of split ``split``: column ``image`` (unset: the first other ``Image``
    column) streamed as pixels, column ``mask`` as int32 masks, cut into train, validation and test
    (not stratified). A mask holding an index beyond ``classes`` is an error naming its row, when
    the row is read; the first row is read here."""
    import datasets
    import numpy as np

    from core import Dataset
    from plugins.datasets._files import split_indices
    from plugins.datasets._hub import PIXELS, choose_splits, streamed

    o = hub.options
    hub.check()
    names = tuple(c.strip() for c in str(classes).split(",") if c.strip())
    if len(names) < 2:
        raise _usage(
            f"option mask={mask!r} needs --data-opt classes=NAME,NAME,... (the class of each mask index, in order; "
            f"at least 2), got {classes!r}"
        )
    if o.text or o.test_split:
        raise _usage(f"option mask={mask!r} segments images of one split: drop {'text' if o.text else 'test_split'}")
    choose_splits(o.owner, o.split, "", list(hub.open()), hub.name)
    ds = hub.splits[o.split]
    mask = field(OWNER, "mask", mask, ds.column_names, "column", hub.name)
    image = o.image or next((c for c, f in ds.features.items() if isinstance(f, datasets.Image) and c != mask), "")
    if not image:
        raise _usage(
            f"{hub.name} has no Image column besides {mask!r} ({_described(ds)}); give --data-opt image=COLUMN"
        )
    input_column(ds, image, "", hub.name)
    if 0 < o.samples < len(ds):
        ds = ds.select(np.sort(np.random.default_rng(o.seed).choice(len(ds), o.samples, replace=False)))
    rows = split_indices(len(ds), {"validation": o.validation, "test": o.test}, o.seed, OWNER, "rows")
    where = f"{hub.name} {o.split}"
    read, read_mask = image_reader(ds, image, o.size, o.channels, where), mask_reader(ds, mask, o.size, names, where)
    read(0), read_mask(0)  # columns that hold no images stop here, before any training
    data = Dataset(*streamed(rows, None, read, o.batch_size, o.seed, read_mask), task="segmentation", class_names=names)
    data.normalization = PIXELS
    return data


def load_boxes(hub, boxes, label, box_format, classes, max_boxes):
    """A detection Dataset of split ``split``: column ``image`` (unset: the first ``Image`` column)
    streamed as pixels, the boxes of every row read, checked and padded first (``_hf_boxes``), cut
    into train, validation and test (not stratified)."""
    import datasets
    import numpy as np

    from core import Dataset
    from plugins.datasets._detection import FORMATS, check_detection_options
    from plugins.datasets._files import split_indices
    from plugins.datasets._hf_boxes import box_fields, class_names, read_targets
    from plugins.datasets._hub import PIXELS, choose, choose_splits, streamed

    o = hub.options
    hub.check()
    check_detection_options(OWNER, max_boxes)
    choose(OWNER, "box_format", box_format, FORMATS, "Keras bounding-box format")
    if o.text or o.test_split:
        raise _usage(
            f"option boxes={boxes!r} detects in images of one split: drop {'text' if o.text else 'test_split'}"
        )
    choose_splits(o.owner, o.split, "", list(hub.open()), hub.name)
    ds = hub.splits[o.split]
    box_path, label_path = box_fields(ds, boxes, label, hub.name)
    image = o.image or next((c for c, f in ds.features.items() if isinstance(f, datasets.Image)), "")
    if not image:
        raise _usage(f"{hub.name} has no Image column ({_described(ds)}); give --data-opt image=COLUMN")
    input_column(ds, image, "", hub.name)
    if 0 < o.samples < len(ds):
        ds = ds.select(np.sort(np.random.default_rng(o.seed).choice(len(ds), o.samples, replace=False)))
    where = f"{hub.name} {o.split}"
    names = class_names(ds, label_path, classes)
    y, names = read_targets(ds, image, box_path, label_path, names, box_format, max_boxes, where)
    rows = split_indices(len(ds), {"validation": o.validation, "test": o.test}, o.seed, OWNER, "rows")
    read = image_reader(ds, image, o.size, o.channels, where)
    read(0)  # a column that holds no images stops here, before any training
    data = Dataset(*streamed(rows, None, read, o.batch_size, o.seed, y.__getitem__), task="detection",
                   class_names=tuple(names))  # fmt: skip
    data.normalization = PIXELS
    return data


def mask_reader(ds, mask, size, names, where):
    """``read(row)``: the mask of ``row`` as int32 class indices (size, size); errors name the row."""
    import io

    from PIL import Image

    from core import KerastackError, one_line
    from plugins.datasets._images import mask_indices

    masks = ds.select_columns([mask])

    def read(row):
        value = masks[row][mask]
        try:
            if isinstance(value, dict):  # an Image column read without its feature type: encoded bytes
                value = Image.open(io.BytesIO(value["bytes"])) if value.get("bytes") else Image.open(value["path"])
            indices, largest = mask_indices(value, size)
        except Exception as exc:
            raise KerastackError(f"{OWNER}: cannot read the mask of row {row} of {where}: {one_line(exc)}") from None
        if largest >= len(names):
            raise KerastackError(
                f"{OWNER}: the mask of row {row} of {where} holds class index {largest}; the {len(names)} "
                f"classes ({', '.join(names)}) take 0..{len(names) - 1}"
            )
        return indices

    return read


class HfHub(Hub):
    """A ``datasets`` dataset for ``load_hub``: ``inputs`` reads the labelled rows of the splits."""

    def __init__(self, options, name, config, cache_dir):
        super().__init__(options)
        self.name, self.config, self.cache_dir = name, config, cache_dir
        self.splits, self.rows = None, {}

    def open(self):
        self.splits = open_dataset(self.name, self.config, self.cache_dir)
        return self.splits

    def inputs(self):
        o = self.options
        ds = self.splits[o.split]
        image, text = input_column(ds, o.image, o.text, self.name)
        label = label_column(ds, o.label, self.name)
        self.rows[o.split] = labelled_rows(ds, label, self.name, o.samples, o.seed)
        class_names = self.rows[o.split][2]
        if o.test_split:
            test_ds = self.splits[o.test_split]
            self.rows[o.test_split] = labelled_rows(test_ds, label, self.name, o.samples, o.seed, class_names)
        return image, text, class_names

    def texts(self, split, text):
        ds, labels, _ = self.rows[split]
        return [str(t or "") for t in ds[text]], labels

    def image_splits(self, image):
        import numpy as np

        from plugins.datasets._files import split_indices
        from plugins.datasets._hub import streamed

        o = self.options
        ds, labels, _ = self.rows[o.split]
        labels = np.asarray(labels, dtype="int32")
        fractions = {"validation": o.validation, "test": o.test}
        rows = split_indices(len(labels), fractions, o.seed, OWNER, "rows", labels=labels)
        read = image_reader(ds, image, o.size, o.channels, f"{self.name} {o.split}")
        read(0)  # a column that holds no images stops here, before any training
        train, val, test = streamed(rows, labels, read, o.batch_size, o.seed)
        if o.test_split:
            test_ds, test_labels, _ = self.rows[o.test_split]
            read = image_reader(test_ds, image, o.size, o.channels, f"{self.name} {o.test_split}")
            test = streamed((None, None, np.arange(len(test_labels))), test_labels, read, o.batch_size, o.seed)[2]
        return train, val, test


def labelled_rows(ds, label, name, samples, seed, class_names=None):
    """``(ds, int labels, class_names)``: ``samples`` rows drawn at random if > 0, rows without a label
    dropped, labels numbered by ``class_names`` (those of the train split, for a test split) or by
    their own (a ``ClassLabel``'s names, else the values sorted)."""
    import numpy as np

    from plugins.datasets._files import encode_labels, warn

    if 0 < samples < len(ds):  # rows drawn at random: a Hub split is often sorted by class
        ds = ds.select(np.sort(np.random.default_rng(seed).choice(len(ds), samples, replace=False)))
    labels, own_names = read_labels(ds, label, name)
    kept = [i for i, y in enumerate(labels) if y is not None]
    if len(kept) < len(labels):
        warn("hf", f"dropped {len(labels) - len(kept)} of {len(labels)} rows of {name} with no label in {label!r}")
        ds, labels = ds.select(kept), [labels[i] for i in kept]
    if own_names is None:
        values = [str(int(y)) if isinstance(y, float) and y == int(y) else str(y) for y in labels]
        if class_names is None:
            own_names, labels = encode_labels(values, f"label column {label!r}", OWNER)
        else:
            index = {c: i for i, c in enumerate(class_names)}
            unknown = sorted(set(values) - set(index))
            if unknown:
                raise _usage(
                    f"the test split's label column {label!r} holds classes the train split has not: {', '.join(unknown[:5])}"
                )
            labels = [index[v] for v in values]
    elif class_names is None:
        _check_classes(labels, label)
    return ds, labels, class_names or own_names


def image_reader(ds, image, size, channels, where):
    """``read(row)``: the image of ``row`` as the model's input (``_hub.to_pixels``); an image that
    cannot be decoded is an error naming the row."""
    from plugins.datasets._hub import to_pixels

    images = ds.select_columns([image])

    def read(row):
        try:
            return to_pixels(images[row][image], size, channels)
        except Exception as exc:
            from core import KerastackError, one_line

            raise KerastackError(f"{OWNER}: cannot read the image of row {row} of {where}: {one_line(exc)}") from None

    return read


def open_dataset(name, config, cache_dir):
    """The ``DatasetDict`` of ``name``: a local file or folder, else a Hub dataset (downloaded into
    the ``datasets`` cache, or read from it)."""
    from pathlib import Path

    from core import KerastackError, UsageError, choices_text
    from plugins.datasets._hub import first_line

    if not name:
        raise _usage("option name is not set; give a Hub dataset (OWNER/NAME), a local folder or a .parquet file")
    local = Path(name).expanduser()
    kwargs = {"cache_dir": cache_dir} if cache_dir else {}
    if config and local.exists():
        raise _usage(
            f"option config={config!r} names a configuration of a Hub dataset; {name} is a local {'file' if local.is_file() else 'folder'}"
        )
    if local.is_file():
        builder = FILE_BUILDERS.get(local.suffix.lower())
        if builder is None:
            raise _usage(
                f"option name={name!r}: cannot read {local.suffix or 'a file without suffix'}; valid: "
                f"{choices_text(FILE_BUILDERS)} files, or a folder"
            )
        args, kwargs = (builder,), {**kwargs, "data_files": str(local)}
    elif local.is_dir():
        args = (str(local),)
    elif name.startswith(("/", ".", "~")) or local.suffix.lower() in FILE_BUILDERS:
        raise _usage(f"option name={name!r}: no such file or folder")
    else:
        args = (name, config) if config else (name,)
    import datasets

    if local.exists():
        datasets.disable_progress_bars()  # local files: seconds, not worth a bar (a download keeps its bar)
    try:
        loaded = datasets.load_dataset(*args, **kwargs)
    except datasets.exceptions.DatasetNotFoundError as exc:
        raise _usage(f"option name={name!r}: {first_line(exc)}") from None
    except ConnectionError as exc:
        from plugins.datasets._hub import cannot_download

        raise cannot_download(
            OWNER,
            f"{name!r} from the Hugging Face Hub",
            exc,
            f"on a connected machine run `hf download {name} --repo-type dataset --local-dir DIR`, copy DIR "
            "here and give --data-opt name=DIR (or copy the datasets cache, HF_DATASETS_CACHE)",
        ) from None
    except ValueError as exc:  # a configuration that is not there, a split or file that cannot be read
        raise UsageError(f"{OWNER}: {name}: {first_line(exc)}") from None
    except Exception as exc:
        from core import one_line

        raise KerastackError(f"{OWNER}: cannot read {name}: {one_line(exc, first=True)}") from None
    if not isinstance(loaded, datasets.DatasetDict):
        loaded = datasets.DatasetDict({"train": loaded})
    return loaded


def input_column(ds, image, text, name):
    """``(image, text)``: the column given (checked to exist), else the first ``Image`` column, else
    the first string column; one of the two is "" ."""
    import datasets

    features = ds.features
    if image or text:
        option = "image" if image else "text"
        column = field(OWNER, option, image or text, ds.column_names, "column", name)
        feature = features[column]
        is_text = isinstance(feature, datasets.Value) and feature.dtype in ("string", "large_string")
        # An image column of a parquet file written without datasets' metadata is a {bytes, path} struct.
        is_image = isinstance(feature, (datasets.Image, dict))
        if (image and not is_image) or (text and not is_text):
            raise _usage(
                f"option {option}={column!r}: column {column!r} of {name} holds {_kind(feature)}, not "
                f"{'images' if image else 'strings'} ({_described(ds)})"
            )
        return image, text
    for column, feature in features.items():
        if isinstance(feature, datasets.Image):
            return column, ""
    for column, feature in features.items():
        if isinstance(feature, datasets.Value) and feature.dtype in ("string", "large_string"):
            return "", column
    raise _usage(
        f"{name} has no Image or string column ({_described(ds)}); give --data-opt image=COLUMN or text=COLUMN"
    )


def label_column(ds, label, name):
    """The column given (checked to exist), else the first ``ClassLabel`` column, else one named
    label or labels."""
    import datasets

    if label:
        return field(OWNER, "label", label, ds.column_names, "column", name)
    for column, feature in ds.features.items():
        if isinstance(feature, datasets.ClassLabel):
            return column
    for column in LABEL_NAMES:
        if column in ds.column_names:
            return column
    raise _usage(
        f"{name} has no ClassLabel column nor one called label ({_described(ds)}); give --data-opt label=COLUMN"
    )


def read_labels(ds, label, name):
    """``(labels, class_names)``: a ``ClassLabel``'s ids and names (-1, unlabelled, as None), or the
    column's values and None. Only this column is read."""
    import datasets

    feature = ds.features[label]
    values = list(ds.select_columns([label])[label])
    if isinstance(feature, datasets.ClassLabel):
        return [None if v is None or v < 0 else int(v) for v in values], tuple(feature.names)
    if not isinstance(feature, datasets.Value):
        raise _usage(f"option label={label!r}: column {label!r} of {name} holds {feature}, not one class per row")
    return values, None


def _check_classes(labels, label):
    if len(set(labels)) < 2:
        raise _usage(
            f"label column {label!r} has {len(set(labels))} class in these rows; classification needs at least 2"
        )


def _kind(feature):
    """``int64``, ``large_string`` for a plain value; the feature type's name (``Image``) otherwise."""
    return getattr(feature, "dtype", None) if type(feature).__name__ == "Value" else type(feature).__name__


def _described(ds):
    return "columns: " + ", ".join(f"{c} ({_kind(f)})" for c, f in ds.features.items())


def _usage(message):
    from core import UsageError

    return UsageError(f"{OWNER}: {message}")
