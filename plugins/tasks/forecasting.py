"""``forecasting``: the next ``horizon`` values of a series from a window of its past.

Judged by MAE (the metric a run is listed by), RMSE, sMAPE and R², beside the naive forecasts a
model must beat to show skill, on the same split: the last value repeated (``last_value``) and, for a
series with a season, the value one season back (``seasonal_naive``). ``skill`` is the share of the
last-value forecast's MAE the model removes (0.2: 20 % lower). Targets are values: standardized on
the train split in training, in the series' own units in the exported file.
"""

import numpy as np

from core import Scorer, Task, hookimpl
from plugins.tasks._forecast_metrics import baselines, scores


class ForecastScorer(Scorer):
    """Keeps the targets and each side's forecasts (a forecast split is small: windows × horizon
    values) and the naive forecasts from the inputs (``info``: ``target_index``, ``season``)."""

    def __init__(self, task, info=None, class_names=None):
        super().__init__(task, info, class_names)
        self.kept = {}  # "y", "keras", "other", "last_value", "seasonal_naive" → list of arrays

    def _keep(self, key, values):
        self.kept.setdefault(key, []).append(np.asarray(values, dtype="float64").reshape(len(values), -1))

    def add(self, x, y, keras_out, out=None):
        if y is None:
            return
        self._keep("y", y)
        self._keep("keras", keras_out)
        if out is not None:
            self._keep("other", np.asarray(out).reshape(np.shape(keras_out)))
        if x is not None and "target_index" in self.info:
            horizon = int(np.prod(np.shape(y)[1:]))
            naive = baselines(np.asarray(x), self.info["target_index"], horizon, self.info.get("season", 0))
            for name, forecast in naive.items():
                self._keep(name, forecast)

    def _all(self, key):
        return np.concatenate(self.kept[key]) if key in self.kept else None

    def result(self, runtime=None):
        if "y" not in self.kept:
            return {}
        y, out = self._all("y"), {}
        for side, prefix in (("keras", "keras_"), ("other", f"{runtime}_" if runtime else "")):
            if side in self.kept:
                out.update({prefix + k: v for k, v in scores(y, self._all(side)).items()})
        for name in ("last_value", "seasonal_naive"):
            if name in self.kept:
                out[f"{name}_mae"] = scores(y, self._all(name))["mae"]
        if "last_value_mae" in out and out["last_value_mae"] > 0:
            out["keras_skill"] = 1.0 - out["keras_mae"] / out["last_value_mae"]
        return out

    def keras_result(self):
        """Keras's scores, the baselines' MAE and the skill, for ``metrics.json``."""
        found = self.result(runtime="other")
        return {k.removeprefix("keras_"): v for k, v in found.items() if not k.startswith("other_")}


class Forecasting(Task):
    summary = "the next values of a series from a window of its past; judged by MAE beside naive forecasts"
    continuous = True
    loss = "mse"
    metrics = ("mae",)
    metric = ("mae", False)
    device = "values"
    scorer_class = ForecastScorer

    def predictions(self, y, outputs):
        """Each window's true and forecast values, ``(n, horizon)``."""
        if y is None:
            return None
        return {"y_true": np.asarray(y), "y_pred": np.asarray(outputs).reshape(np.shape(y))}


@hookimpl
def register_tasks(register):
    register("forecasting", Forecasting, summary=Forecasting.summary)
