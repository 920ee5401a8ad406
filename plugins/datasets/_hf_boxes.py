"""``hf`` with ``boxes``: a detection dataset of a Hugging Face dataset's box feature (see
``hf.load``). Not a plugin (the leading ``_``).

Hub detection datasets keep boxes two ways: a struct column of lists (``objects: {bbox: [[x, y, w,
h], ...], category: [0, ...]}``, datasets' ``Sequence`` of a dict) or a list of structs (``objects:
[{bbox: [...], category: 0}, ...]``); a box feature is named ``COLUMN/FIELD`` in either, or
``COLUMN`` for a column of box lists beside a column of classes. All boxes are read (no image
decoded for relative formats; only image headers for pixel ones), checked and padded at once
(``_detection.Boxes``); images stream as the other hf image datasets do.
"""

OWNER = "dataset 'hf'"
LABEL_NAMES = ("category", "categories", "label", "labels", "class", "classes", "category_id")


def read_targets(ds, image, box_path, label_path, names, box_format, max_boxes, where):
    """``(y, names)``: every row's boxes as the detection target (``_detection.Boxes``), and the
    class names (``names``, else the ids found). A row whose box and class counts differ, a box
    that is not four numbers or a class that is not one of ``names`` is an error naming the row."""
    from plugins.datasets._detection import Boxes

    found = Boxes("hf", box_format)
    sizes = image_sizes(ds, image, where) if not box_format.startswith("rel_") else None
    for row, (row_boxes, row_classes) in enumerate(read_rows(ds, box_path, label_path)):
        if len(row_boxes) != len(row_classes):
            raise _error(f"row {row} of {where}: {len(row_boxes)} boxes but {len(row_classes)} classes")
        width, height = sizes[row] if sizes else (1, 1)
        for k, (box, cls) in enumerate(zip(row_boxes, row_classes)):
            _check_box(box, cls, names, f"row {row} of {where}, box {k}")
            found.add(row, [float(v) for v in box], int(cls), f"row {row} of {where}, box {k}", width, height)
    if names is None:
        names = tuple(str(i) for i in range(max(found.classes, default=0) + 1))
    return found.targets(len(ds), max_boxes), names


def box_fields(ds, boxes, label, name):
    """``(box path, label path)``: each a ``(column, field)`` pair (field None for a column); the
    label unset: a ``ClassLabel`` beside the boxes, else a field or column named like a class."""
    from plugins.datasets._detection import inner_field
    from plugins.datasets._hub import field

    column, _, inner = boxes.partition("/")
    field(OWNER, "boxes", column, ds.column_names, "column", name)
    siblings = _fields(ds.features[column])
    if inner:
        if siblings is None:
            raise _usage(f"option boxes={boxes!r}: column {column!r} of {name} holds no fields ({_described(ds)})")
        inner_field(OWNER, "boxes", boxes, list(siblings), f"column {column!r} of {name}")
    elif siblings is not None:
        raise _usage(
            f"option boxes={boxes!r}: column {column!r} of {name} holds fields ({', '.join(siblings)}); "
            f"give --data-opt boxes={column}/FIELD"
        )
    box_path = (column, inner or None)
    if label:
        lab_column, _, lab_inner = label.partition("/")
        field(OWNER, "label", lab_column, ds.column_names, "column", name)
        if lab_inner:
            fields = list(_fields(ds.features[lab_column]) or {})
            inner_field(OWNER, "label", label, fields, f"column {lab_column!r} of {name}")
        return box_path, (lab_column, lab_inner or None)
    pool = siblings if inner else dict(ds.features)
    others = [k for k in pool if k != (inner or column)]
    pick = next((k for k in others if _is_class_label(pool[k])), None)
    pick = pick or next((k for k in others if k.lower() in LABEL_NAMES), None)
    if pick is None:
        where = f"column {column!r}" if inner else name
        raise _usage(
            f"option boxes={boxes!r}: no class field beside the boxes in {where} (a ClassLabel, or one named "
            f"{', '.join(LABEL_NAMES[:4])}); give --data-opt label={column + '/' if inner else ''}FIELD"
        )
    return box_path, ((column, pick) if inner else (pick, None))


def read_rows(ds, box_path, label_path):
    """Per row, ``(boxes, classes)``: lists read from the columns (no image decoded)."""
    columns = sorted({box_path[0], label_path[0]})
    table = ds.select_columns(columns)
    for record in table:
        yield _values(record, box_path) or [], _values(record, label_path) or []


def class_names(ds, label_path, classes):
    """The names of a ``ClassLabel`` class field, else ``classes`` (comma-separated), else None."""

    given = tuple(c.strip() for c in str(classes).split(",") if c.strip())
    if given:
        if len(set(given)) != len(given):
            raise _usage(f"option classes: class names must be distinct, got {', '.join(given)}")
        return given
    column, inner = label_path
    feature = ds.features[column]
    if inner is not None:
        feature = _fields(feature)[inner]
    feature = _element(feature)
    return tuple(feature.names) if _is_class_label(feature) else None


def image_sizes(ds, image, where):
    """Each row's image ``(width, height)``, read from the file's header (no pixels decoded)."""
    import io

    import datasets
    from PIL import Image

    from core import KerastackError, one_line

    raw = ds.select_columns([image]).cast_column(image, datasets.Image(decode=False))
    sizes = []
    for row, record in enumerate(raw):
        value = record[image]
        try:
            with Image.open(io.BytesIO(value["bytes"]) if value.get("bytes") else value["path"]) as opened:
                sizes.append(opened.size)
        except Exception as exc:
            raise KerastackError(f"{OWNER}: cannot read the image of row {row} of {where}: {one_line(exc)}") from None
    return sizes


def _check_box(box, cls, names, where):
    import math

    from core import KerastackError

    if not (
        isinstance(box, (list, tuple))
        and len(box) == 4
        and all(isinstance(v, (int, float)) and math.isfinite(v) for v in box)
    ):
        raise KerastackError(f"{OWNER}: {where}: {box!r} is not a box (four finite numbers)")
    if not isinstance(cls, (int, float)) or cls != int(cls) or cls < 0 or (names is not None and cls >= len(names)):
        valid = (
            f"0..{len(names) - 1} ({', '.join(names[:5])}{', ...' if len(names) > 5 else ''})"
            if names
            else "an id from 0"
        )
        raise KerastackError(f"{OWNER}: {where}: class {cls!r} is not one of the classes: {valid}")


def _values(record, path):
    column, inner = path
    value = record[column]
    if inner is None:
        return value
    if isinstance(value, dict):  # a struct of lists
        return value.get(inner)
    return [item[inner] for item in value or []]  # a list of structs


def _fields(feature):
    """The fields of a struct column (a dict, or a List of a dict), else None."""
    if isinstance(feature, dict):
        return feature
    inner = getattr(feature, "feature", None)
    return inner if isinstance(inner, dict) else None


def _element(feature):
    """A list feature's element type (``List(ClassLabel)`` → ``ClassLabel``)."""
    return getattr(feature, "feature", feature)


def _is_class_label(feature):
    import datasets

    return isinstance(_element(feature), datasets.ClassLabel)


def _described(ds):
    return "columns: " + ", ".join(ds.column_names)


def _usage(message):
    from core import UsageError

    return UsageError(f"{OWNER}: {message}")


def _error(message):
    from core import KerastackError

    return KerastackError(f"{OWNER}: {message}")
