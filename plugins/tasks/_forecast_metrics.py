"""Forecasting scores and naive baselines, in numpy only (the device side and reports can use them).

A forecast is judged against the baselines anyone could write without a model, computed on the same
windows: the *last value* (every step of the horizon repeats the window's last observed target) and
the *seasonal naive* forecast (each step repeats the value one season earlier, wrapping over the last
season for a horizon longer than it). A model that does not beat them has no skill. Not a plugin
(the leading ``_``).
"""

import numpy as np


def scores(y_true, y_pred):
    """``{"mae", "rmse", "smape", "r2"}`` of forecasts ``y_pred`` against ``y_true`` (same shape,
    every element one forecast value), as floats.

    ``mae`` mean |e|, ``rmse`` sqrt(mean e²) with e = y_pred - y_true; ``smape`` the symmetric mean
    absolute percentage error, in percent: mean of 200 · |e| / (|y_true| + |y_pred|), a pair of
    zeros counting 0 (range 0 to 200); ``r2`` 1 - Σe² / Σ(y_true - mean(y_true))² over all elements
    (NaN for a constant ``y_true``)."""
    y_true = np.asarray(y_true, dtype="float64")
    y_pred = np.asarray(y_pred, dtype="float64")
    if y_true.shape != y_pred.shape:
        raise ValueError(f"forecasts of shape {y_pred.shape} cannot be scored against targets {y_true.shape}")
    error = y_pred - y_true
    size = np.abs(y_true) + np.abs(y_pred)
    ratio = np.divide(2 * np.abs(error), size, out=np.zeros_like(size), where=size > 0)
    spread = np.sum(np.square(y_true - y_true.mean()))
    return {
        "mae": float(np.mean(np.abs(error))),
        "rmse": float(np.sqrt(np.mean(np.square(error)))),
        "smape": float(100 * np.mean(ratio)),
        "r2": float(1 - np.sum(np.square(error)) / spread) if spread > 0 else float("nan"),
    }


def baselines(x, target_index, horizon, season):
    """The naive forecasts of windows ``x`` ``(n, window, features)``, each ``(n, horizon)``:
    ``last_value`` (the window's last value of column ``target_index``, repeated), and
    ``seasonal_naive`` (step k of the horizon, 0-based, takes the value ``season * (k // season + 1)``
    steps before it) where ``season`` is at least 1 and at most the window; absent otherwise."""
    x = np.asarray(x)
    series = x[:, :, target_index] if x.ndim == 3 else x
    window = series.shape[1]
    out = {"last_value": np.repeat(series[:, -1:], horizon, axis=1)}
    if 1 <= season <= window:
        steps = np.arange(horizon)
        out["seasonal_naive"] = series[:, window - season + steps % season]
    return out
