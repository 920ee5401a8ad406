"""An example kerastack plugin package: a dataset, an architecture and a callback.

It does not import kerastack's ``core`` at module level: a marker made with the project name is all
a plugin needs. keras is imported inside the functions, so loading the plugin costs nothing.
"""

import pluggy

hookimpl = pluggy.HookimplMarker("kerastack")


@hookimpl
def register_datasets(register):
    register("moons", load_moons, summary="two interleaving half circles with noise (scikit-learn)")


@hookimpl
def register_architectures(register):
    register(
        "wide_mlp", build_wide_mlp, summary="two wide Dense layers for small tabular inputs", tasks=("classification",)
    )


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


def build_wide_mlp(spec, units=64, activation="relu"):
    import keras

    inputs = keras.Input(spec.input_shape)
    x = keras.layers.Dense(units, activation=activation)(inputs)
    x = keras.layers.Dense(units, activation=activation)(x)
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
