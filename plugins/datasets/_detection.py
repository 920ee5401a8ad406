"""What the detection datasets (``yolo_folder``, ``coco``, and ``hf``/``tfds`` with box features)
share: boxes gathered as they are read, then converted to the detection target (``plugins/tasks/_boxes``:
float32 ``(N, max_boxes, 5)``, rel_xyxy and a class id, padding rows of class -1), checked and
padded in one pass. Not a plugin (the leading ``_``).

The formats and the clipping are Keras's (``keras.utils.bounding_boxes``); a box is fixed, never
refused: one reaching outside its image is clipped to it, one of zero or negative area (as given, or
wholly outside the image) is dropped, and each kind is counted in one warning line naming the first
file (or row) that had it. A malformed line or an unknown class is an error, raised by the reader
that knows the file and line.
"""

# Keras's bounding-box formats (keras.utils.bounding_boxes.convert_format): what hf's box_format takes
FORMATS = (
    "xyxy",
    "xywh",
    "center_xywh",
    "yxyx",
    "center_yxhw",
    "rel_xyxy",
    "rel_xywh",
    "rel_center_xywh",
    "rel_yxyx",
)
TOLERANCE = 1e-6  # a relative coordinate this far past the edge is rounding, clipped without a word


class Boxes:
    """Boxes of a dataset's images, gathered one at a time (``add``), made into targets at once
    (``targets``). ``name`` is the dataset named in warnings; ``source`` the boxes' format as read
    (a Keras format name, e.g. ``"rel_center_xywh"`` for YOLO label files, ``"xywh"`` for COCO)."""

    def __init__(self, name, source):
        self.name, self.source = name, source
        self.rows, self.classes, self.images, self.where, self.sizes = [], [], [], [], []

    def add(self, image, box, cls, where, width=1, height=1):
        """One box of image number ``image``: four numbers in ``source`` format, its class id,
        ``where`` it was read (``"labels/a.txt line 3"``) and, for a pixel format, the image's size."""
        self.rows.append(box)
        self.classes.append(cls)
        self.images.append(image)
        self.where.append(where)
        self.sizes.append((height, width))

    def targets(self, count, max_boxes=0):
        """float32 ``(count, max_boxes, 5)``: each image's boxes as rel_xyxy and class ids, padded;
        ``max_boxes`` 0 means the most any image holds (after dropping). An image with more boxes
        than ``max_boxes`` keeps its largest, with a counted warning."""
        import numpy as np

        from core import KerastackError
        from plugins.datasets._files import warn
        from plugins.tasks._boxes import check_boxes, pad_boxes

        rel = self._relative()
        images = np.asarray(self.images, "int64")
        classes = np.asarray(self.classes, "int64")
        given_empty = (rel[:, 2] <= rel[:, 0]) | (rel[:, 3] <= rel[:, 1])
        outside = ~given_empty & np.any((rel < -TOLERANCE) | (rel > 1 + TOLERANCE), axis=1)
        clipped, kept_by_clip = self._clip(rel)
        gone = outside & ~kept_by_clip
        self._say(given_empty, "have zero or negative area: dropped")
        self._say(gone, "lie wholly outside their image: dropped")
        self._say(outside & kept_by_clip, "reach outside their image: clipped to it")
        keep = ~given_empty & kept_by_clip
        boxes, classes, images = clipped[keep], classes[keep], images[keep]
        order = np.argsort(images, kind="stable")  # grouped by image: one sort, not a scan per image
        bounds = np.searchsorted(images[order], np.arange(count + 1))
        per_image = [order[start:end] for start, end in zip(bounds[:-1], bounds[1:])]
        most = max((len(rows) for rows in per_image), default=0)
        width = int(max_boxes) or most
        if most > width:
            over = [rows for rows in per_image if len(rows) > width]
            lost = sum(len(rows) - width for rows in over)
            warn(
                self.name,
                f"{len(over)} images hold more than max_boxes={width} boxes (up to {most}): kept the largest "
                f"{width} of each, dropped {lost} boxes",
            )
            area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
            per_image = [rows if len(rows) <= width else rows[np.argsort(-area[rows], kind="stable")[:width]]
                         for rows in per_image]  # fmt: skip
        y = pad_boxes([boxes[rows] for rows in per_image], [classes[rows] for rows in per_image], width)
        problem = check_boxes(y)
        if problem:  # every bad box is fixed or refused above: this would be a bug, said plainly
            raise KerastackError(f"{self.name}: {problem}")
        return y

    def _relative(self):
        """All boxes as rel_xyxy float32 ``(M, 4)`` (Keras's ``convert_format``)."""
        import numpy as np

        rows = np.asarray(self.rows, "float32").reshape(-1, 4)
        if not len(rows) or self.source == "rel_xyxy":
            return rows
        import keras

        sizes = np.asarray(self.sizes, "float32").reshape(-1, 2)
        rel = keras.utils.bounding_boxes.convert_format(
            rows, self.source, "rel_xyxy", height=sizes[:, :1], width=sizes[:, 1:]
        )
        return np.asarray(keras.ops.convert_to_numpy(rel), "float32")

    def _clip(self, rel):
        """``(clipped boxes, whether each keeps an area)``: Keras's ``clip_to_image_size``, which
        marks a box clipped to nothing with label -1."""
        import numpy as np

        if not len(rel):
            return rel, np.zeros(0, bool)
        import keras

        clipped = keras.utils.bounding_boxes.clip_to_image_size(
            {"boxes": rel, "labels": np.zeros(len(rel), "int32")}, bounding_box_format="rel_xyxy"
        )
        boxes = np.asarray(keras.ops.convert_to_numpy(clipped["boxes"]), "float32")
        return boxes, np.asarray(keras.ops.convert_to_numpy(clipped["labels"])) >= 0

    def _say(self, which, what):
        from plugins.datasets._files import warn

        if which.any():
            first = self.where[int(which.argmax())]
            warn(self.name, f"{int(which.sum())} of {len(which)} boxes {what} (the first: {first})")


def detection_dataset(x, y, class_names, splits=None, **fractions):
    """A detection ``Dataset`` of images ``x`` and targets ``y``: ``splits`` (index arrays of train,
    validation, test, None for a split not there) or, without, a split cut by ``fractions``
    (``validation``, ``test``, ``seed``, ``owner``: see ``_files.split_indices``, not stratified)."""
    from core import Dataset
    from plugins.datasets._files import split_indices, take

    if splits is None:
        owner, seed = fractions.pop("owner"), fractions.pop("seed")
        splits = split_indices(len(x), fractions, seed, owner, "images")
    train, val, tst = (take(rows, x, y) for rows in splits)
    return Dataset(train=train, validation=val, test=tst, task="detection", class_names=tuple(class_names))


def check_detection_options(owner, max_boxes):
    """``max_boxes`` 0 (the most in any image) or at least 1."""
    from plugins.datasets._checks import check_range

    check_range(owner, "max_boxes", max_boxes, 0, 10000, why=" (0: the most boxes any image holds)")


def inner_field(owner, option, value, fields, where):
    """The field after the ``/`` of option value ``value`` (``objects/bbox``) if it is one of
    ``fields``; else a usage error naming the option, with did-you-mean and the fields listed."""
    from core import UsageError, did_you_mean

    inner = value.partition("/")[2]
    if inner not in fields:
        raise UsageError(
            f"{owner}: option {option}={value!r}: {where} has no field {inner!r}{did_you_mean(inner, fields)}; "
            f"its fields: {', '.join(fields)}"
        )
    return inner
