"""The detection task: Keras's per-anchor outputs selected as the exported graph does, scored by COCOeval."""

import numpy as np
import pytest

from core import task_named
from plugins.tasks._boxes import pad_boxes

TRUTH = pad_boxes([[[0.1, 0.1, 0.4, 0.5], [0.6, 0.6, 0.9, 0.95]], [[0.2, 0.3, 0.7, 0.6]]], [[0, 1], [2]], max_boxes=3)


def anchors(rows, classes=3):
    """Per-anchor outputs (anchors, 4 + C) of (xyxy box, class, score) rows."""
    out = np.zeros((len(rows), 4 + classes), np.float32)
    for i, (box, c, s) in enumerate(rows):
        out[i, :4], out[i, 4 + c] = box, s
    return out


def test_selection_keeps_the_best_of_overlapping_boxes_in_litert_order():
    task = task_named("detection")
    raw = anchors([([0.1, 0.1, 0.4, 0.5], 0, 0.9), ([0.11, 0.1, 0.4, 0.5], 0, 0.8), ([0.6, 0.6, 0.9, 0.95], 1, 0.7)])
    rows = task.deployed(raw[None])
    assert rows.shape == (1, 25, 6)
    kept = rows[0][rows[0, :, 4] >= 0]
    assert len(kept) == 2  # the 0.8 box overlaps the 0.9 one: suppressed
    np.testing.assert_allclose(kept[0], [0.1, 0.1, 0.5, 0.4, 0, 0.9], rtol=1e-6)  # ymin, xmin, ymax, xmax
    assert kept[1, 4] == 1 and rows[0, 2:, 4].tolist() == [-1] * 23


def test_coco_scores_and_matched_boxes():
    task = task_named("detection")
    perfect = np.stack(
        [
            anchors([([0.1, 0.1, 0.4, 0.5], 0, 0.9), ([0.6, 0.6, 0.9, 0.95], 1, 0.8)]),
            anchors([([0.2, 0.3, 0.7, 0.6], 2, 0.9), ([0.0, 0.0, 0.1, 0.1], 2, 0.01)]),
        ]
    )
    shifted = perfect.copy()
    shifted[1, 0, :4] = [0.45, 0.3, 0.95, 0.6]  # class 2's box moved off: IoU 0.25 with the truth
    scorer = task.scorer(class_names=["circle", "square", "triangle"])
    x = np.zeros((2, 32, 32, 1), np.float32)
    scorer.add(x, TRUTH, task.deployed(perfect), task.deployed(shifted))
    got = scorer.result("tflite")
    assert got["keras_map50"] == pytest.approx(1.0) and got["keras_map"] == pytest.approx(1.0)
    assert got["tflite_map50"] < 1.0 and got["ap_per_class"]["triangle"] == pytest.approx(0.0)
    assert got["ap_per_class"]["circle"] == pytest.approx(1.0)
    assert got["agreement"] == 2 / 3 and got["matched_boxes"] == 3
    kept = scorer.keras_result()
    assert kept["map50"] == pytest.approx(1.0) and kept["ap_square"] == pytest.approx(1.0)


def test_no_detection_scores_zero():
    scorer = task_named("detection").scorer(class_names=["a", "b", "c"])
    scorer.add(None, TRUTH, task_named("detection").deployed(np.zeros((2, 4, 7), np.float32)))
    assert scorer.keras_result()["map50"] == 0.0
