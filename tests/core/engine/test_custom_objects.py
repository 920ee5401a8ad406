"""Custom Keras objects that are not layers (a constraint, a regularizer) reload in every process.

The plugin is written the way an outside author would: a light entry module (hooks only, no keras)
and a module of custom objects that ``build`` imports. A process that loads the run's model without
building it (the TensorFlow export child, ``verify``, ``--resume``) must import that module too.
"""

import json
import os
import textwrap

from conftest import read_json, run_cli, run_python

ENTRY = """
import os

from core import hookimpl


@hookimpl
def register_architectures(register):
    register("clipnet", build, summary="a Dense net with a custom constraint and regularizer")


@hookimpl
def register_callbacks(register):
    register("stop_after_first_epoch", stop_after_first_epoch, summary="simulates a crash (tests)")


def build(spec, units=16):
    import keras

    from my_plugin.objects import ClipWeights, ScaledL1

    inputs = keras.Input(spec.input_shape)
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(
        units, activation="relu", kernel_constraint=ClipWeights(0.5), kernel_regularizer=ScaledL1(1e-4)
    )(x)
    return keras.Model(inputs, keras.layers.Dense(spec.num_classes, activation="softmax")(x))


def stop_after_first_epoch():
    import keras

    class Stop(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if os.environ.get("MY_PLUGIN_CRASH"):
                raise RuntimeError("simulated crash after the first checkpoint")

    return Stop()
"""

OBJECTS = """
import keras


@keras.saving.register_keras_serializable(package="my_plugin")
class ClipWeights(keras.constraints.Constraint):
    def __init__(self, limit=1.0):
        self.limit = float(limit)

    def __call__(self, w):
        return keras.ops.clip(w, -self.limit, self.limit)

    def get_config(self):
        return {"limit": self.limit}


@keras.saving.register_keras_serializable(package="my_plugin")
class ScaledL1(keras.regularizers.Regularizer):
    def __init__(self, rate=1e-4):
        self.rate = float(rate)

    def __call__(self, w):
        return self.rate * keras.ops.sum(keras.ops.abs(w))

    def get_config(self):
        return {"rate": self.rate}
"""


def _plugin(tmp_path):
    package = tmp_path / "pkgs" / "my_plugin"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(textwrap.dedent(ENTRY))
    (package / "objects.py").write_text(textwrap.dedent(OBJECTS))
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path / "pkgs"), os.environ.get("PYTHONPATH")]))}


def test_non_layer_custom_objects_export_verify_and_resume(tmp_path):
    env = _plugin(tmp_path)
    run = tmp_path / "run"
    common = ["--arch", "clipnet", "--data", "digits", "--backend", "jax", "--plugin", "my_plugin", "--quiet"]

    # Interrupted after its first checkpoint, then resumed in a process that builds nothing.
    args = ["train", *common, "--epochs", "2", "--seed", "0", "--callback", "stop_after_first_epoch"]
    crashed = run_cli(*args, "--out", run, env={**env, "MY_PLUGIN_CRASH": "1"})
    assert crashed.returncode == 1, crashed.stderr
    assert (run / "checkpoint.keras").exists()
    assert "my_plugin.objects" in read_json(run / "run.json")["custom_modules"]

    resumed = run_cli("train", "--resume", run, "--quiet", env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert read_json(run / "run.json")["status"] == "complete"

    # The TensorFlow export child loads the jax-trained model; verify loads it once more.
    exported = run_cli("export", run, "--to", "tflite", "--opt", "quantize=int8", env=env)
    assert exported.returncode == 0, exported.stderr
    int8 = run / "export" / "tflite" / "model_int8.tflite"
    assert int8.exists(), exported.stdout
    verified = run_cli("verify", int8, "--run", run, "--json", env=env)
    assert verified.returncode == 0, verified.stderr
    result = json.loads(verified.stdout)
    assert result["agreement"] >= 0.9, result

    # Without the run's record, the .keras archive names the modules it needs itself.
    proc = run_python(
        """
        import sys
        from core import load_model
        model = load_model(sys.argv[1])
        print("CONSTRAINT", type(model.layers[2].kernel_constraint).__module__)
        """,
        run / "model.keras",
        env=env,
    )
    assert "CONSTRAINT my_plugin.objects" in proc.stdout
