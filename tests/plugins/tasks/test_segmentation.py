"""The segmentation task: a confusion matrix summed over every pixel of every batch, scored per class."""

import numpy as np

from core import task_named


def test_scorer_counts_pixels_not_images_and_names_classes():
    task = task_named("segmentation")
    truth = np.array([[[0, 0], [1, 1]], [[0, 2], [2, 2]]])  # two 2×2 masks
    keras_out = np.eye(3)[truth]  # perfect
    lite_mask = truth.copy()
    lite_mask[1, 0, 1] = 0  # one pixel of class 2 called background
    scorer = task.scorer(class_names=["background", "circle", "square"])
    scorer.add(None, truth[:1], keras_out[:1], np.eye(3)[lite_mask[:1]])
    scorer.add(None, truth[1:], keras_out[1:], np.eye(3)[lite_mask[1:]])
    got = scorer.result("tflite")
    assert got["keras_mean_iou"] == 1.0 and got["keras_pixel_accuracy"] == 1.0
    assert got["tflite_pixel_accuracy"] == 7 / 8 and got["agreement"] == 7 / 8
    # background: 3 right of 4 called so → 3/4; square: 2 of 3 → 2/3; circle untouched.
    assert got["iou_per_class"] == {"background": 0.75, "circle": 1.0, "square": 2 / 3}
    assert abs(got["tflite_mean_iou"] - (0.75 + 1.0 + 2 / 3) / 3) < 1e-12
    assert scorer.keras_result()["iou_square"] == 1.0  # numbers only, for metrics.json


def test_predictions_keep_each_image_shape():
    outputs = np.eye(3)[np.array([[[0, 2], [1, 1]]])]
    saved = task_named("segmentation").predictions(np.array([[[0, 2], [1, 0]]]), outputs)
    assert saved["y_true"].shape == (1, 2, 2) and saved["y_pred"].tolist() == [[[0, 2], [1, 1]]]
    assert task_named("segmentation").unit == "pixel" and task_named("segmentation").device == "mask"
