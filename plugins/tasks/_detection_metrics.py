"""Detections from a detector's per-anchor outputs, and their COCO scores (pycocotools).

A detector's Keras output is ``(N, anchors, 4 + C)``: a rel_xyxy box per anchor point and C sigmoid
class scores. ``select`` keeps the final detections as the exported file's graph does
(``tf.raw_ops.NonMaxSuppressionV5``: class-agnostic, each anchor's best class, greedy by score):
``(N, max_detections, 6)`` rows ``ymin, xmin, ymax, xmax, class, score`` (the order of LiteRT's and
MediaPipe's detection outputs), padding rows class -1 and score 0. ``coco_scores`` evaluates such rows
against the targets of ``_boxes`` with pycocotools' COCOeval; ``matched`` counts the rows two
runtimes give alike.
"""

import contextlib
import io

import numpy as np

from plugins.tasks._boxes import unpad

# What the exported graph selects with; the Keras side's ``select`` uses the same numbers.
MAX_DETECTIONS = 25
IOU_THRESHOLD = 0.5
SCORE_THRESHOLD = 0.05
MATCH_IOU = 0.9  # two runtimes' boxes match at this IoU or more (and the same class)
MATCH_SCORE = 0.25  # the boxes whose match counts: those a user would show


def _iou(box, boxes):
    """IoU of one yxyx box with each of ``boxes`` (k, 4)."""
    top, left = np.maximum(box[0], boxes[:, 0]), np.maximum(box[1], boxes[:, 1])
    bottom, right = np.minimum(box[2], boxes[:, 2]), np.minimum(box[3], boxes[:, 3])
    inter = np.clip(bottom - top, 0, None) * np.clip(right - left, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-12)


def select(outputs, max_detections=MAX_DETECTIONS, iou_threshold=IOU_THRESHOLD, score_threshold=SCORE_THRESHOLD):
    """``(N, max_detections, 6)`` final detections of per-anchor outputs ``(N, anchors, 4 + C)``, by
    the rule of NON_MAX_SUPPRESSION_V5 (the exported graph's): best class per anchor, scores above
    ``score_threshold``, greedy by score, a box dropped when its IoU with a kept one exceeds
    ``iou_threshold``."""
    outputs = np.asarray(outputs, np.float32)
    out = np.zeros((len(outputs), max_detections, 6), np.float32)
    out[..., 4] = -1
    for i, anchors in enumerate(outputs):
        boxes = anchors[:, [1, 0, 3, 2]]  # xyxy → yxyx
        scores, classes = anchors[:, 4:].max(-1), anchors[:, 4:].argmax(-1)
        order = [j for j in np.argsort(-scores, kind="stable") if scores[j] > score_threshold]
        kept = []
        for j in order:
            if len(kept) == max_detections:
                break
            if not kept or np.all(_iou(boxes[j], boxes[kept]) <= iou_threshold):
                kept.append(j)
        out[i, : len(kept), :4] = boxes[kept]
        out[i, : len(kept), 4] = classes[kept]
        out[i, : len(kept), 5] = scores[kept]
    return out


class CocoBoxes:
    """Ground truth and detections gathered batch by batch, scored at the end by COCOeval."""

    def __init__(self):
        self.truth, self.found, self.images = [], [], 0

    def add(self, y, detections, size=(1.0, 1.0)):
        """One batch: targets ``y`` (``_boxes`` format) and ``select``'s rows; ``size`` (height,
        width) scales relative boxes to pixels (COCO's area ranges are in pixels)."""
        h, w = size
        for (boxes, classes), rows in zip(unpad(y), np.asarray(detections)):
            image = self.images
            self.images += 1
            for (x0, y0, x1, y1), c in zip(boxes, classes):
                self.truth.append((image, int(c), [x0 * w, y0 * h, (x1 - x0) * w, (y1 - y0) * h]))
            for top, left, bottom, right, c, score in rows[rows[:, 4] >= 0]:
                box = [left * w, top * h, (right - left) * w, (bottom - top) * h]
                self.found.append((image, int(c), box, float(score)))

    def scores(self, num_classes):
        """``{"map": mAP@[.5:.95], "map50": mAP@.5, "ap_per_class": [AP@[.5:.95] or None per class]}``
        (None for a class with no box in the truth); mAPs are 0 with no detection at all."""
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        gt = COCO()
        gt.dataset = {
            "images": [{"id": i} for i in range(self.images)],
            "categories": [{"id": c + 1} for c in range(num_classes)],
            "annotations": [
                {"id": k + 1, "image_id": i, "category_id": c + 1, "bbox": b, "area": b[2] * b[3], "iscrowd": 0}
                for k, (i, c, b) in enumerate(self.truth)
            ],
        }
        with contextlib.redirect_stdout(io.StringIO()):
            gt.createIndex()
            if not self.found or not self.truth:
                return {"map": 0.0, "map50": 0.0, "ap_per_class": [None] * num_classes}
            dt = gt.loadRes([{"image_id": i, "category_id": c + 1, "bbox": b, "score": s} for i, c, b, s in self.found])
            evaluation = COCOeval(gt, dt, "bbox")
            evaluation.evaluate()
            evaluation.accumulate()
            evaluation.summarize()
        precision = evaluation.eval["precision"]  # (IoU thresholds, recall, class, area, max dets)
        per_class = []
        for k in range(num_classes):
            p = precision[:, :, k, 0, -1]
            per_class.append(float(p[p > -1].mean()) if np.any(p > -1) else None)
        stats = evaluation.stats
        return {"map": max(float(stats[0]), 0.0), "map50": max(float(stats[1]), 0.0), "ap_per_class": per_class}


def matched(reference, other, min_score=MATCH_SCORE, min_iou=MATCH_IOU):
    """``(matched, total)``: of ``reference``'s detections scoring ``min_score`` or more, how many
    ``other`` gives too (the same class, IoU at least ``min_iou``), each of ``other``'s used once."""
    hit = total = 0
    for ref, oth in zip(np.asarray(reference), np.asarray(other)):
        ref = ref[(ref[:, 4] >= 0) & (ref[:, 5] >= min_score)]
        free = oth[oth[:, 4] >= 0]
        total += len(ref)
        for row in ref:
            if not len(free):
                break
            ious = np.where(free[:, 4] == row[4], _iou(row[:4], free[:, :4]), 0)
            best = int(ious.argmax())
            if ious[best] >= min_iou:
                hit += 1
                free = np.delete(free, best, 0)
    return hit, total
