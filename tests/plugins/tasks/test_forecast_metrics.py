"""Forecasting scores and naive baselines against values worked out by hand."""

import numpy as np
import pytest

from plugins.tasks._forecast_metrics import baselines, scores


def test_scores_by_hand():
    y_true = np.array([[1.0, 2.0], [3.0, 4.0]])
    y_pred = np.array([[2.0, 2.0], [3.0, 2.0]])  # errors 1, 0, 0, -2
    got = scores(y_true, y_pred)
    assert got["mae"] == pytest.approx(3 / 4)
    assert got["rmse"] == pytest.approx(np.sqrt(5 / 4))
    # 200 |e| / (|y| + |ŷ|): 200/3, 0, 0, 400/6 -> mean 100/3
    assert got["smape"] == pytest.approx((200 / 3 + 400 / 6) / 4)
    # 1 - SSE / SST: SSE 5, SST (1.5² + 0.5²) * 2 = 5
    assert got["r2"] == pytest.approx(0.0)
    assert scores(y_true, y_true) == {"mae": 0.0, "rmse": 0.0, "smape": 0.0, "r2": 1.0}


def test_smape_counts_a_pair_of_zeros_as_no_error_and_r2_needs_spread():
    got = scores(np.array([0.0, 2.0]), np.array([0.0, -2.0]))
    assert got["smape"] == pytest.approx(100.0)  # 0 for the zeros, 200 for opposite signs
    assert np.isnan(scores(np.ones(3), np.zeros(3))["r2"])
    with pytest.raises(ValueError, match=r"shape \(3,\) cannot be scored against targets \(2,\)"):
        scores(np.zeros(2), np.zeros(3))


def test_baselines_by_hand():
    # two windows of 5 steps, 2 columns; the target is column 1
    x = np.stack([np.stack([np.arange(5.0), 10 + np.arange(5.0)], axis=1), np.full((5, 2), 7.0)])
    got = baselines(x, target_index=1, horizon=3, season=2)
    np.testing.assert_array_equal(got["last_value"], [[14, 14, 14], [7, 7, 7]])
    # step k repeats the value 2 * (k // 2 + 1) steps before it: window[3], window[4], window[3]
    np.testing.assert_array_equal(got["seasonal_naive"], [[13, 14, 13], [7, 7, 7]])
    assert set(baselines(x, 1, 3, season=0)) == {"last_value"}
    assert set(baselines(x, 1, 3, season=6)) == {"last_value"}  # longer than the window
    np.testing.assert_array_equal(baselines(x, 1, 2, season=5)["seasonal_naive"], [[10, 11], [7, 7]])
