"""Semantic segmentation's numbers, in numpy alone: a pixel confusion matrix, accumulated batch by
batch, and the scores read from it (pixel accuracy, IoU per class and their mean, Dice).

Not a plugin (the leading ``_``): the segmentation task calls these for training's test metrics, for
``verify`` (Keras's and LiteRT's outputs each against the labels) and for reports.
"""

import numpy as np


def confusion(y_true, y_pred, num_classes):
    """The int64 (C, C) matrix of pixel counts: row = true class, column = predicted class.

    ``y_true`` holds class indices of any shape, e.g. (n, H, W); ``y_pred`` class indices of the
    same shape, or scores with one more axis (n, H, W, C), whose argmax is taken. Matrices of
    several batches add up to the matrix of all of them. A class index outside [0, C) is a
    ValueError (a wrong ``num_classes`` must not be counted silently)."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_pred.ndim == y_true.ndim + 1:
        y_pred = y_pred.argmax(-1)
    if y_pred.shape != y_true.shape:
        raise ValueError(f"labels have shape {y_true.shape} but predictions {y_pred.shape}")
    t, p = y_true.reshape(-1).astype(np.int64), y_pred.reshape(-1).astype(np.int64)
    for what, a in (("labels", t), ("predictions", p)):
        if a.size and (a.min() < 0 or a.max() >= num_classes):
            raise ValueError(
                f"{what} hold class {int(a.min())}..{int(a.max())}; {num_classes} classes take 0..{num_classes - 1}"
            )
    counts = np.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).astype(np.int64)


def scores(matrix, class_names):
    """``{"pixel_accuracy", "mean_iou", "dice", "iou_per_class", "pixels"}`` of a confusion matrix.

    A class's IoU is TP / (TP + FP + FN), its Dice 2 TP / (2 TP + FP + FN). A class that is neither
    in the labels nor in the predictions has no IoU (None in ``iou_per_class``) and is left out of
    the means ``mean_iou`` and ``dice``: an image set without cars says nothing about cars. A
    predicted class absent from the labels counts, with IoU 0."""
    matrix = np.asarray(matrix, dtype=np.int64)
    if matrix.shape != (len(class_names), len(class_names)):
        raise ValueError(f"a confusion matrix of shape {matrix.shape} for {len(class_names)} classes")
    tp = np.diag(matrix).astype(float)
    union = matrix.sum(0) + matrix.sum(1) - tp  # TP + FP + FN
    present = union > 0
    iou = np.divide(tp, union, out=np.zeros_like(tp), where=present)
    dice = np.divide(2 * tp, union + tp, out=np.zeros_like(tp), where=present)
    total = int(matrix.sum())
    return {
        "pixel_accuracy": float(tp.sum() / total) if total else None,
        "mean_iou": float(iou[present].mean()) if present.any() else None,
        "dice": float(dice[present].mean()) if present.any() else None,
        "iou_per_class": {name: float(v) if ok else None for name, v, ok in zip(class_names, iou, present)},
        "pixels": total,
    }
