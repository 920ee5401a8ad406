"""``reconstruction``: the model outputs its own input (autoencoders)."""

import numpy as np

from core import Task, hookimpl
from plugins.tasks.regression import ErrorScorer


class SquaredErrorScorer(ErrorScorer):
    name, error = "mse", staticmethod(np.square)


class Reconstruction(Task):
    summary = "the input itself (an autoencoder learns from any dataset's inputs)"
    supervised = False
    loss = "mse"
    metrics = ("mae",)
    metric = ("mse", False)
    scorer_class = SquaredErrorScorer

    def targets(self, x, y):
        return x, x


@hookimpl
def register_tasks(register):
    register("reconstruction", Reconstruction, summary=Reconstruction.summary)
