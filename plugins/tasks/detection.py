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

# The file's four outputs (plugins/deployment/tflite/boxes.py names them so in its signature) → the
# names MediaPipe's ObjectDetector finds them by in the standard metadata
# (mediapipe/tasks/cc/vision/object_detector/object_detector_graph.cc: kLocationTensorName, ...).
METADATA_NAMES = {
    "detection_boxes": "location",
    "detection_classes": "category",
    "detection_scores": "score",
    "num_detections": "number of detections",
}
# Where left, top, right and bottom lie in a box's 4 values: the file's boxes are ymin, xmin, ymax, xmax.
BOX_INDEX = [1, 0, 3, 2]


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

    def output_metadata(self, class_names=None):
        """The four outputs as MediaPipe's ObjectDetector reads them (the layout of the TF Object
        Detection API's post-processing): ``location`` boxes with BoundingBoxProperties (boundaries,
        relative), ``category`` class ids named by ``labels.txt`` (value labels), ``score``,
        ``number of detections``; each names its output in the file's signature (``tensor``), so
        the exporter puts it where the file has that output."""
        return [
            {
                "name": METADATA_NAMES["detection_boxes"],
                "tensor": "detection_boxes",
                "description": "The boxes of the detections: ymin, xmin, ymax, xmax, relative to the image.",
                "content": {"bounding_box": {"index": BOX_INDEX, "type": "boundaries", "coordinate_type": "ratio"}},
                "range": [2, 2],  # the boxes' 4 values span the last axis of (1, K, 4)
            },
            {
                "name": METADATA_NAMES["detection_classes"],
                "tensor": "detection_classes",
                "description": "The class id of each detection (-1 past the number of detections).",
                "labels": "value",
            },
            {
                "name": METADATA_NAMES["detection_scores"],
                "tensor": "detection_scores",
                "description": "The score of each detection, in [0, 1] (0 past the number of detections).",
                "stats": {"min": [0.0], "max": [1.0]},
            },
            {
                "name": METADATA_NAMES["num_detections"],
                "tensor": "num_detections",
                "description": "How many of the rows are detections.",
            },
        ]

    def output_groups(self):
        """The three per-detection outputs, read together (MediaPipe's and the Task Library's group)."""
        names = [METADATA_NAMES[k] for k in ("detection_boxes", "detection_classes", "detection_scores")]
        return [{"name": "detection_result", "tensors": names}]

    def predictions(self, y, outputs):
        """Per image, the targets and the final detections (``deployed``'s rows)."""
        if y is None:
            return None
        return {"y_true": np.asarray(y), "detections": np.asarray(outputs)}


@hookimpl
def register_tasks(register):
    register("detection", Detection, summary=Detection.summary)
