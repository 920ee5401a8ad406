"""``detection``: labelled boxes per image (``_boxes``' format), judged by COCO mAP (pycocotools).

A detector's Keras model gives per-anchor boxes and class scores; what a deployed file returns is
the final detections its graph selects (``_detection_metrics.select``, the same rule as the
exported NON_MAX_SUPPRESSION_V5), so ``deployed`` turns Keras's outputs into those rows and both
runtimes are scored alike: mAP@0.5 (the metric a run is judged by), mAP@0.5:0.95, AP per class,
and ``agreement``: the share of Keras's boxes (score ≥ 0.25) that the other runtime gives too
(same class, IoU ≥ 0.9).
"""

import numpy as np

from core import Scorer, Task, hookimpl
from plugins.tasks._detection_metrics import CocoBoxes, matched, select


class DetectionScorer(Scorer):
    def __init__(self, task, info=None, class_names=None):
        super().__init__(task, info, class_names)
        self.sides = {}  # "keras" / "other" → CocoBoxes
        self.hit = self.boxes = 0
        self.num_classes = len(self.class_names) if self.class_names else 0

    def add(self, x, y, keras_out, out=None):
        if y is None:
            return
        size = tuple(np.asarray(x).shape[1:3]) if x is not None and np.ndim(x) >= 3 else (1.0, 1.0)
        y = np.asarray(y)
        self.num_classes = max(self.num_classes, int(y[..., 4].max(initial=-1)) + 1)
        for side, rows in (("keras", keras_out), ("other", out)):
            if rows is not None:
                rows = np.asarray(rows).reshape(len(y), -1, 6)
                self.num_classes = max(self.num_classes, int(rows[..., 4].max(initial=-1)) + 1)
                self.sides.setdefault(side, CocoBoxes()).add(y, rows, size)
        if out is not None:
            hit, total = matched(keras_out, np.asarray(out).reshape(len(y), -1, 6))
            self.hit, self.boxes = self.hit + hit, self.boxes + total

    def _names(self):
        if self.class_names and len(self.class_names) == self.num_classes:
            return list(self.class_names)
        return [str(i) for i in range(self.num_classes)]

    def _scores(self, side):
        found = self.sides[side].scores(self.num_classes)
        found["ap_per_class"] = dict(zip(self._names(), found["ap_per_class"]))
        return found

    def result(self, runtime=None):
        """``keras_map50``, ``keras_map``, ``keras_ap_per_class`` ({class: AP@[.5:.95], None for a
        class absent from the truth}); the other runtime's as ``tflite_map50``, ``tflite_map`` and
        ``ap_per_class``; ``agreement`` (matched boxes) and ``matched_boxes`` (how many were counted)."""
        out = {}
        for side, prefix in (("keras", "keras_"), ("other", f"{runtime}_" if runtime else "")):
            if side in self.sides:
                found = self._scores(side)
                out[prefix + "map50"], out[prefix + "map"] = found["map50"], found["map"]
                out["keras_ap_per_class" if side == "keras" else "ap_per_class"] = found["ap_per_class"]
        if "other" in self.sides:
            out["agreement"] = self.hit / self.boxes if self.boxes else 1.0
            out["matched_boxes"] = self.boxes
        return out

    def keras_result(self):
        """Keras's scores for ``metrics.json``: ``map50``, ``map`` and each class's AP as ``ap_CLASS``."""
        if "keras" not in self.sides:
            return {}
        found = self._scores("keras")
        out = {"map50": found["map50"], "map": found["map"]}
        out.update({f"ap_{name}": v for name, v in found["ap_per_class"].items() if v is not None})
        return out


class Detection(Task):
    summary = "labelled boxes per image (rel_xyxy + class, padded with class -1); judged by COCO mAP@0.5"
    metric = ("map50", True)
    unit = "box"
    device = "boxes"
    agreement = "Keras's boxes scoring 0.25 or more that the file gives too (same class, IoU ≥ 0.9)"
    scorer_class = DetectionScorer

    def deployed(self, outputs):
        """The final detections of per-anchor outputs ``(N, anchors, 4 + C)``: ``(N, 25, 6)`` rows
        ``ymin, xmin, ymax, xmax, class, score`` (padding class -1), as the exported graph selects them."""
        return select(outputs)

    def predictions(self, y, outputs):
        """Per image, the targets and the final detections (``deployed``'s rows)."""
        if y is None:
            return None
        return {"y_true": np.asarray(y), "detections": np.asarray(outputs)}


@hookimpl
def register_tasks(register):
    register("detection", Detection, summary=Detection.summary)
