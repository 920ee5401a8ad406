"""An example kerastack plugin package: datasets, an architecture, a callback and a task.

The task, ``multilabel`` (any number of labels per sample), is one kerastack does not have: the
``tags`` dataset names it, ``wide_mlp`` builds for it, and training, export, verify, the export
report and ``kerastack runs`` judge it by its own metric (label accuracy) with no change to kerastack.

It does not import kerastack's ``core`` at module level: a marker made with the project name is all
a plugin needs. keras is imported inside the functions, so loading the plugin costs nothing.
"""

import pluggy

hookimpl = pluggy.HookimplMarker("kerastack")


@hookimpl
def register_datasets(register):
    register("moons", load_moons, summary="two interleaving half circles with noise (scikit-learn)")
    register("tags", load_tags, summary="5 tags per sample, each on or off (scikit-learn's multilabel maker)")


@hookimpl
def register_architectures(register):
    register(
        "wide_mlp",
        build_wide_mlp,
        summary="two wide Dense layers for small tabular inputs",
        tasks=("classification", "multilabel"),
    )


@hookimpl
def register_tasks(register):
    register("multilabel", multilabel_task, summary="any number of labels per sample (one sigmoid each)")


def multilabel_task():
    """The ``multilabel`` task: targets are multi-hot rows, outputs one probability per label."""
    import numpy as np

    from core import Scorer, Task

    class LabelScorer(Scorer):
        """``label_accuracy`` (the share of labels right, at 0.5) and ``exact_match`` (samples with
        every label right) of each side; ``agreement``: the share of labels both sides give alike."""

        def add(self, x, y, keras_out, out=None):
            if y is None:
                return
            truth, keras_on = np.asarray(y) > 0.5, np.asarray(keras_out) > 0.5
            on = None if out is None else np.asarray(out).reshape(keras_on.shape) > 0.5
            counted = (
                ("label_accuracy", truth.size, lambda p: np.sum(p == truth)),
                ("exact_match", len(truth), lambda p: np.sum(np.all(p == truth, axis=-1))),
            )
            for name, count, right in counted:
                self.mean(name, right(keras_on), None if on is None else right(on), count)
            if on is not None:
                self.mean("agreement", None, np.sum(on == keras_on), keras_on.size)

    class MultiLabel(Task):
        summary = "any number of labels per sample (one sigmoid each)"
        loss = "binary_crossentropy"
        metrics = ("binary_accuracy",)
        metric = ("label_accuracy", True)
        device = "values"
        scorer_class = LabelScorer

        def predictions(self, y, outputs):
            return None if y is None else {"y_true": np.asarray(y), "y_prob": np.asarray(outputs)}

    return MultiLabel()


@hookimpl
def register_callbacks(register):
    register("epoch_timer", make_epoch_timer, summary="print each epoch's wall time")


def load_moons(samples=1200, noise=0.2, seed=0):
    from sklearn.datasets import make_moons

    from core import Dataset

    x, y = make_moons(n_samples=samples, noise=noise, random_state=seed)
    x, y = x.astype("float32"), y.astype("int32")
    a, b = int(samples * 0.7), int(samples * 0.85)
    return Dataset(
        train=(x[:a], y[:a]), validation=(x[a:b], y[a:b]), test=(x[b:], y[b:]), class_names=("upper", "lower")
    )


def load_tags(samples=1200, seed=0):
    from sklearn.datasets import make_multilabel_classification

    from core import Dataset

    x, y = make_multilabel_classification(n_samples=samples, n_features=10, n_classes=5, random_state=seed)
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    x, y = x.astype("float32"), y.astype("float32")
    a, b = int(samples * 0.7), int(samples * 0.85)
    return Dataset(train=(x[:a], y[:a]), validation=(x[a:b], y[a:b]), test=(x[b:], y[b:]), task="multilabel")


def build_wide_mlp(spec, units=64, activation="relu"):
    import keras

    inputs = keras.Input(spec.input_shape)
    x = keras.layers.Dense(units, activation=activation)(inputs)
    x = keras.layers.Dense(units, activation=activation)(x)
    if spec.task == "multilabel":
        outputs = keras.layers.Dense(spec.target_shape[-1], activation="sigmoid")(x)
    else:
        outputs = keras.layers.Dense(spec.num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="wide_mlp")


def make_epoch_timer():
    import time

    import keras

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            print(f"epoch {epoch + 1} took {time.perf_counter() - self.started:.2f} s")

    return EpochTimer()
