"""The detection target format, defined once for the readers that make it and the task that reads it.

A detection dataset's ``y`` is a float32 array ``(N, max_boxes, 5)``: per box ``x_min, y_min, x_max,
y_max`` in relative coordinates ``[0, 1]`` (``keras.utils.bounding_boxes`` format ``"rel_xyxy"``) and
the class id; rows past an image's last box are padding, with class id ``-1`` and a zero box.

``pad_boxes`` makes that array from per-image lists; ``check_boxes`` says in one line what is wrong
with one (shape, dtype, range, zero area, unknown class, padding). Plain numpy: no framework imported.
"""

import numpy as np

BOX_FORMAT = "rel_xyxy"  # keras.utils.bounding_boxes format of the four box columns
COLUMNS = ("x_min", "y_min", "x_max", "y_max", "class")
BOX = slice(0, 4)  # y[..., BOX]: the boxes
CLASS = 4  # y[..., CLASS]: the class id (float), PAD for a padding row
PAD = -1


def pad_boxes(boxes, classes, max_boxes=None):
    """``(N, max_boxes, 5)`` float32 from per-image boxes (each ``(k, 4)`` rel_xyxy) and class ids
    (each ``(k,)``); ``max_boxes`` defaults to the largest count (at least 1). An image with more
    boxes than ``max_boxes`` is an error (a ValueError naming the image and both counts)."""
    counts = [len(c) for c in classes]
    if len(boxes) != len(classes):
        raise ValueError(f"{len(boxes)} lists of boxes for {len(classes)} lists of classes")
    width = max(counts, default=0) if max_boxes is None else int(max_boxes)
    width = max(width, 1)
    y = np.zeros((len(counts), width, 5), "float32")
    y[..., CLASS] = PAD
    for i, (b, c) in enumerate(zip(boxes, classes)):
        if len(c) > width:
            raise ValueError(f"image {i} has {len(c)} boxes, more than max_boxes={width}")
        if len(c):
            y[i, : len(c), BOX] = np.asarray(b, "float32").reshape(len(c), 4)
            y[i, : len(c), CLASS] = np.asarray(c, "float32")
    return y


def valid(y):
    """Boolean ``(N, max_boxes)``: which rows are boxes (not padding)."""
    return np.asarray(y)[..., CLASS] >= 0


def unpad(y):
    """Per image, ``(boxes (k, 4), classes (k,) int)`` of its real boxes."""
    y = np.asarray(y)
    return [(row[valid(row), BOX], row[valid(row), CLASS].astype("int64")) for row in y]


def check_boxes(y, num_classes=None, *, where="targets"):
    """None when ``y`` follows the format, else a one-line reason naming ``where`` and the first bad
    image and box: not ``(N, max_boxes, 5)``, a coordinate outside [0, 1], ``x_max <= x_min`` or
    ``y_max <= y_min`` (zero area), a class id not an integer in ``[0, num_classes)``, a padding row
    that is not all zero."""
    y = np.asarray(y)
    if y.ndim != 3 or y.shape[-1] != 5:
        return f"{where}: boxes must be (N, max_boxes, 5) [{', '.join(COLUMNS)}], got shape {y.shape}"
    cls, box = y[..., CLASS], y[..., BOX]
    real = cls >= 0

    def first(bad, why):
        i, j = np.argwhere(bad)[0]
        return f"{where}: image {i} box {j} {why}: {y[i, j].tolist()}"

    if np.any(cls != np.round(cls)) or np.any(cls[~real] != PAD):
        return first((cls != np.round(cls)) | (~real & (cls != PAD)), f"has a class id not an integer >= 0 or {PAD}")
    if num_classes is not None and np.any(cls >= num_classes):
        return first(cls >= num_classes, f"has an unknown class (valid: 0..{num_classes - 1})")
    if np.any(~real[..., None] & (box != 0)):
        return first(~real & np.any(box != 0, -1), f"is padding (class {PAD}) with a non-zero box")
    outside = real & np.any((box < 0) | (box > 1) | ~np.isfinite(box), -1)
    if outside.any():
        return first(outside, "is outside the image (coordinates must be relative, in [0, 1])")
    empty = real & ((box[..., 2] <= box[..., 0]) | (box[..., 3] <= box[..., 1]))
    if empty.any():
        return first(empty, "has zero area (x_max <= x_min or y_max <= y_min)")
    return None
