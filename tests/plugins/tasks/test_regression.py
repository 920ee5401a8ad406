"""The regression and reconstruction tasks: mean absolute (squared) error over every target value."""

import numpy as np

from core import task_named


def test_regression_mae_over_every_value_of_each_side():
    scorer = task_named("regression").scorer()
    y = np.array([[1.0, 2.0], [3.0, 4.0]])
    scorer.add(None, y, y + 1.0, y - [[0.0, 2.0], [0.0, 2.0]])
    assert scorer.result("tflite") == {"keras_mae": 1.0, "tflite_mae": 1.0}
    assert task_named("regression").continuous and task_named("regression").device == "values"


def test_reconstruction_is_scored_against_its_inputs():
    task = task_named("reconstruction")
    x = np.arange(6, dtype="float32").reshape(2, 3)
    x_fit, y_fit = task.targets(x, np.array([7, 8]))  # labels are not what it learns
    assert y_fit is x and x_fit is x and not task.supervised
    scorer = task.scorer()
    scorer.add(x, y_fit, x + 2.0)
    assert scorer.keras_result() == {"mse": 4.0}
