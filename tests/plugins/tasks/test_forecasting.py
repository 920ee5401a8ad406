"""The forecasting task: each side's errors over every forecast value, beside the naive forecasts."""

import numpy as np

from core import task_named


def test_scorer_reports_errors_baselines_and_skill():
    task = task_named("forecasting")
    x = np.array([[[1.0], [2.0], [3.0], [4.0]], [[5.0], [6.0], [7.0], [8.0]]])  # window 4, one column
    y = np.array([[5.0, 6.0], [9.0, 10.0]])
    scorer = task.scorer({"target_index": 0, "season": 2})
    scorer.add(x, y, y + 0.5, y - 1.0)
    got = scorer.result("tflite")
    assert got["keras_mae"] == 0.5 and got["tflite_mae"] == 1.0 and got["keras_rmse"] == 0.5
    # last value: 4, 4 and 8, 8 → errors 1, 2, 1, 2; seasonal (season 2): 3, 4 and 7, 8 → 2 each.
    assert got["last_value_mae"] == 1.5 and got["seasonal_naive_mae"] == 2.0
    assert abs(got["keras_skill"] - (1 - 0.5 / 1.5)) < 1e-12
    assert scorer.keras_result()["mae"] == 0.5 and "keras_mae" not in scorer.keras_result()
    assert task.continuous and task.metric == ("mae", False)
