"""``segmentation``: a class per pixel, from per-pixel softmax probabilities (U-Net, DeepLabV3, SegFormer).

Pixels are not samples: the scorer sums a confusion matrix over every pixel of every image, from
which come the per-class IoU, their mean (the metric a run is judged by), Dice and pixel accuracy;
predictions keep each image's shape, and the confusion matrix says it counts pixels.
"""

import numpy as np

from core import Scorer, Task, hookimpl
from plugins.tasks._segmentation_metrics import confusion, scores


class SegmentationScorer(Scorer):
    """Confusion matrices (rows: true class) of Keras's masks and the other runtime's; ``agreement``:
    the share of pixels whose class both give alike."""

    def __init__(self, task, info=None, class_names=None):
        super().__init__(task, info, class_names)
        self.matrices = {}  # "keras" / "other" → (C, C) pixel counts
        self.agree = self.pixels = 0

    def add(self, x, y, keras_out, out=None):
        if y is None:
            return
        keras_out = np.asarray(keras_out)
        classes = keras_out.shape[-1]
        truth = np.asarray(y).reshape(keras_out.shape[:-1])
        keras_mask = keras_out.argmax(-1)
        self._count("keras", truth, keras_mask, classes)
        if out is not None:
            mask = np.asarray(out).reshape(keras_out.shape).argmax(-1)
            self._count("other", truth, mask, classes)
            self.agree += int(np.sum(mask == keras_mask))
            self.pixels += int(mask.size)

    def _count(self, side, truth, mask, classes):
        counted = confusion(truth, mask, classes)
        known = self.matrices.get(side)
        self.matrices[side] = counted if known is None else known + counted

    def _scores(self, side):
        matrix = self.matrices[side]
        names = self.class_names if self.class_names and len(self.class_names) == len(matrix) else None
        found = scores(matrix, names or [str(i) for i in range(len(matrix))])
        found.pop("pixels", None)
        return found

    def result(self, runtime=None):
        """``keras_mean_iou``, ``keras_dice``, ``keras_pixel_accuracy`` and ``keras_iou_per_class``
        ({class: IoU, None where the class is in neither truth nor prediction}); the same for the
        other runtime (``tflite_mean_iou``, ..., its per-class IoU as ``iou_per_class``); ``agreement``."""
        out = {}
        for side, prefix in (("keras", "keras_"), ("other", f"{runtime}_" if runtime else "")):
            if side not in self.matrices:
                continue
            found = self._scores(side)
            per_class = found.pop("iou_per_class")
            out.update({prefix + k: v for k, v in found.items()})
            out["keras_iou_per_class" if side == "keras" else "iou_per_class"] = per_class
        if self.pixels:
            out["agreement"] = self.agree / self.pixels
        return out

    def keras_result(self):
        """Keras's scores for ``metrics.json``: numbers only, each class's IoU as ``iou_CLASS``."""
        if "keras" not in self.matrices:
            return {}
        found = self._scores("keras")
        per_class = found.pop("iou_per_class")
        found.update({f"iou_{name}": value for name, value in per_class.items() if value is not None})
        return found


class Segmentation(Task):
    summary = "a class per pixel (per-pixel softmax); judged by mean IoU"
    classes = True
    loss = "sparse_categorical_crossentropy"
    metrics = ("accuracy",)
    metric = ("mean_iou", True)
    unit = "pixel"
    device = "mask"
    scorer_class = SegmentationScorer

    def output_metadata(self, class_names=None):
        """Per-pixel class probabilities, the class axis labelled: MediaPipe's ImageSegmenter reads
        them (its category mask is their argmax; its confidence masks one class's channel each)."""
        return [
            {
                "name": "segmentation_masks",
                "description": "Per-pixel probabilities of the classes (softmax), height x width x classes.",
                "content": "image",
                "labels": "axis",
            }
        ]

    def predictions(self, y, outputs):
        """True and predicted masks, each image's shape kept: ``(n, H, W)`` class ids."""
        if y is None:
            return None
        outputs = np.asarray(outputs)
        return {"y_true": np.asarray(y).reshape(outputs.shape[:-1]), "y_pred": outputs.argmax(-1)}


@hookimpl
def register_tasks(register):
    register("segmentation", Segmentation, summary=Segmentation.summary)
