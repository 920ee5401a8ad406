"""Segmentation metrics against values computed by hand."""

import numpy as np
import pytest

from plugins.tasks._segmentation_metrics import confusion, scores

# Two 2x3 images, classes background (0), cat (1), dog (2), bird (3, never seen nor predicted).
TRUE = np.array([[[0, 0, 1], [0, 1, 1]], [[2, 2, 0], [0, 0, 0]]])
PRED = np.array([[[0, 1, 1], [0, 1, 0]], [[2, 0, 0], [0, 0, 1]]])
NAMES = ("background", "cat", "dog", "bird")


def test_confusion_by_hand_and_accumulated_over_batches():
    m = confusion(TRUE, PRED, 4)
    assert m.dtype == np.int64 and m.sum() == 12
    # Counted by hand, pixel by pixel (row = true, column = predicted):
    # image 1: t 0 0 1 / 0 1 1, p 0 1 1 / 0 1 0 -> (0,0) (0,1) (1,1) (0,0) (1,1) (1,0)
    # image 2: t 2 2 0 / 0 0 0, p 2 0 0 / 0 0 1 -> (2,2) (2,0) (0,0) (0,0) (0,0) (0,1)
    expected = np.zeros((4, 4), np.int64)
    for t, p in [(0, 0), (0, 1), (1, 1), (0, 0), (1, 1), (1, 0), (2, 2), (2, 0), (0, 0), (0, 0), (0, 0), (0, 1)]:
        expected[t, p] += 1
    np.testing.assert_array_equal(m, expected)
    np.testing.assert_array_equal(confusion(TRUE[:1], PRED[:1], 4) + confusion(TRUE[1:], PRED[1:], 4), m)
    probabilities = np.eye(4)[PRED] * 0.7 + 0.075  # scores with a class axis: argmax taken
    np.testing.assert_array_equal(confusion(TRUE, probabilities, 4), m)


def test_scores_by_hand():
    s = scores(confusion(TRUE, PRED, 4), NAMES)
    # background: TP 5, FP 2 (cat, dog called background), FN 2 -> IoU 5/9, Dice 10/14
    # cat: TP 2, FP 2, FN 1 -> IoU 2/5, Dice 4/7; dog: TP 1, FP 0, FN 1 -> IoU 1/2, Dice 2/3
    assert s["pixel_accuracy"] == pytest.approx(8 / 12)
    assert s["iou_per_class"] == pytest.approx({"background": 5 / 9, "cat": 2 / 5, "dog": 1 / 2, "bird": None})
    assert s["iou_per_class"]["bird"] is None
    assert s["mean_iou"] == pytest.approx((5 / 9 + 2 / 5 + 1 / 2) / 3)
    assert s["dice"] == pytest.approx((10 / 14 + 4 / 7 + 2 / 3) / 3)
    assert s["pixels"] == 12


def test_a_class_predicted_but_never_true_counts_with_iou_zero():
    s = scores(confusion(np.zeros((1, 2, 2), int), np.array([[[0, 0], [0, 3]]]), 4), NAMES)
    assert s["iou_per_class"] == {"background": 0.75, "cat": None, "dog": None, "bird": 0.0}
    assert s["mean_iou"] == pytest.approx(0.375)


def test_bad_inputs_are_errors():
    with pytest.raises(ValueError, match=r"labels hold class 0..4; 4 classes take 0..3"):
        confusion(np.array([0, 4]), np.array([0, 1]), 4)
    with pytest.raises(ValueError, match=r"labels have shape \(2,\) but predictions \(3,\)"):
        confusion(np.array([0, 1]), np.array([0, 1, 1]), 4)
    with pytest.raises(ValueError, match=r"shape \(4, 4\) for 3 classes"):
        scores(np.zeros((4, 4)), NAMES[:3])
    assert scores(np.zeros((2, 2)), ("a", "b"))["mean_iou"] is None
