"""``regression``: one or more values per sample, in the targets' own units."""

import numpy as np

from core import Scorer, Task, hookimpl


class ErrorScorer(Scorer):
    """The mean of ``error(output - target)`` over every target value, for each side: ``mae`` with
    ``np.abs``, ``mse`` with ``np.square``."""

    name, error = "mae", staticmethod(np.abs)

    def add(self, x, y, keras_out, out=None):
        if y is None:
            return
        keras_out = np.asarray(keras_out, dtype="float32")
        target = np.asarray(y, dtype="float32").reshape(keras_out.shape)
        other = None if out is None else np.sum(self.error(np.asarray(out, "float32").reshape(target.shape) - target))
        self.mean(self.name, np.sum(self.error(keras_out - target)), other, target.size)


class Regression(Task):
    summary = "values per sample, in the targets' units (standardized in training, undone in the model)"
    continuous = True
    loss = "mse"
    metrics = ("mae",)
    metric = ("mae", False)
    device = "values"
    scorer_class = ErrorScorer


@hookimpl
def register_tasks(register):
    register("regression", Regression, summary=Regression.summary)
