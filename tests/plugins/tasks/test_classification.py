"""The classification task: top-1 accuracy of each side, agreement, and the predictions saved."""

import numpy as np

from core import task_named


def test_scorer_counts_top_classes_and_agreement():
    task = task_named("classification")
    y = np.array([0, 1, 2, 1])
    keras_out = np.eye(3)[[0, 1, 2, 2]]  # 3 of 4 right
    lite_out = np.eye(3)[[0, 1, 1, 2]]  # 2 of 4 right, 3 of 4 as Keras
    scorer = task.scorer()
    scorer.add(None, y[:2], keras_out[:2], lite_out[:2])
    scorer.add(None, y[2:], keras_out[2:], lite_out[2:])
    assert scorer.result("tflite") == {"keras_accuracy": 0.75, "tflite_accuracy": 0.5, "agreement": 0.75}


def test_predictions_are_labels_and_predicted_classes():
    saved = task_named("classification").predictions(np.array([[2], [0]]), np.eye(3)[[2, 1]])
    assert saved["y_true"].tolist() == [2, 0] and saved["y_pred"].tolist() == [2, 1]
    assert task_named("classification").predictions(None, np.eye(3)) is None
