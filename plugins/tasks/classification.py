"""``classification``: one class per sample, from softmax probabilities."""

import numpy as np

from core import Scorer, Task, hookimpl


class ClassificationScorer(Scorer):
    """Top-1 accuracy of each side, and ``agreement``: the share of samples whose top class is Keras's."""

    def add(self, x, y, keras_out, out=None):
        if y is None:
            return
        y = np.asarray(y).reshape(-1)
        keras_top = np.asarray(keras_out).argmax(-1).reshape(-1)
        top = None if out is None else np.asarray(out).argmax(-1).reshape(-1)
        self.mean("accuracy", np.sum(keras_top == y), None if top is None else np.sum(top == y), len(y))
        if top is not None:
            self.mean("agreement", None, np.sum(top == keras_top), len(y))


class Classification(Task):
    summary = "one class per sample (softmax probabilities)"
    classes = True
    loss = "sparse_categorical_crossentropy"
    metrics = ("accuracy",)
    metric = ("accuracy", True)
    device = "classes"
    scorer_class = ClassificationScorer

    def output_metadata(self, class_names=None):
        """One tensor of class probabilities, labelled by the run's classes: what MediaPipe's
        ImageClassifier and TextClassifier read (scores in [0, 1] by class)."""
        return [
            {
                "name": "probability",
                "description": "Probabilities of the classes (softmax).",
                "labels": "axis",
                "stats": {"min": [0.0], "max": [1.0]},
            }
        ]

    def predictions(self, y, outputs):
        """Labels and predicted classes, one per sample: what ``confusion.png`` is drawn from."""
        if y is None:
            return None
        return {"y_true": np.asarray(y).reshape(-1), "y_pred": np.asarray(outputs).argmax(-1).reshape(-1)}


@hookimpl
def register_tasks(register):
    register("classification", Classification, summary=Classification.summary)
