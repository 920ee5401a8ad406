"""Mixed-precision runs deploy in float32 (issue 14): ``core.deploy.precision.float32_model`` and what
every exporter does with it. A run trained with --precision mixed_bfloat16 (each backend) or
mixed_float16 (TensorFlow) exports to float32 and int8 TFLite and to ONNX, and verifies."""

import json

import pytest
from conftest import read_json, run_python

from core.deploy.precision import _float32_config
from core.proc.quiet import noise


def policy(name):
    return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": name}, "registered_name": None}


def test_every_mixed_policy_in_a_nested_config_becomes_float32():
    config = {
        "class_name": "Functional",
        "config": {
            "layers": [
                {"class_name": "InputLayer", "config": {"dtype": "float32"}},
                {"class_name": "Conv2D", "config": {"dtype": policy("mixed_bfloat16")}},
                {  # a nested model, and a custom layer that keeps a policy by name
                    "class_name": "Sequential",
                    "config": {"layers": [{"class_name": "Dense", "config": {"dtype": policy("mixed_float16")}}]},
                },
                {"class_name": "MyBlock", "config": {"dtype": "mixed_bfloat16", "inner": {"dtype": "int8"}}},
            ]
        },
    }
    text = json.dumps(_float32_config(config))
    assert "mixed_" not in text
    assert text.count('"float32"') == 4 and '"int8"' in text  # other dtypes are not touched


CONVERTER_DUMP = [
    b'loc(callsite(fused["Conv2D:", "cnn_1/conv2d_1/convolution@__inference___call___801"] at callsite(fused['
    b'"StatefulPartitionedCall:", "x"] at fused["StatefulPartitionedCall:", "StatefulPartitionedCall_1"]))): '
    b"error: 'tf.Conv2D' op is neither a custom op nor a flex op",
    b"error: failed while converting: 'main': ",
    b"Some ops are not supported by the native TFLite runtime, you can enable TF kernels fallback using TF Select.",
    b"TF Select ops: BiasAdd, Conv2D, MatMul",
    b"Details:",
    b'\ttf.BiasAdd(tensor<?x10xbf16>, tensor<10xbf16>) -> (tensor<?x10xbf16>) : {data_format = "NHWC"}',
    b"",
]


def test_the_converters_diagnostics_are_kept_off_stderr():
    dropped = False
    for line in CONVERTER_DUMP:
        assert noise(line, dropped), line
        dropped = True
    assert not noise(b"kerastack: error: exporter 'tflite': LiteRT builtin ops cannot run ...", True)
    assert not noise(b"", False) and not noise(b"Details of my own plugin: x")


# One TensorFlow process: the TensorFlow runs train in it, the torch and JAX ones in a child each;
# every check then reads the same runs. cnn on digits, 1 epoch (Conv2D, MaxPool, Dense, Softmax).
JOB = """
import json, sys
from pathlib import Path
import numpy as np
import keras
from core import export, float32_model, load_run, train, verify
from core.deploy.precision import trained_model
from plugins.datasets.digits import load

root = Path(sys.argv[1])
RUNS = {"tensorflow-bf16": ("tensorflow", "mixed_bfloat16"), "jax-bf16": ("jax", "mixed_bfloat16"),
        "torch-bf16": ("torch", "mixed_bfloat16"), "tensorflow-f16": ("tensorflow", "mixed_float16")}
for name, (backend, precision) in RUNS.items():
    train("cnn", "digits", backend=backend, precision=precision, epochs=1, seed=0, out=root / name,
          verbose=0, learning_rate=0.01, hparams={"filters": 8, "dense": 32})
keras.config.set_dtype_policy("float32")
x, y = load().test
KEYS = ("agreement", "max_abs_diff", "tflite_accuracy", "keras_accuracy", "accuracy")
report = {}
for name in RUNS:
    run = root / name
    mixed = trained_model(load_run(run))
    deployed = float32_model(mixed)
    got = {"policies": sorted({layer.dtype_policy.name for layer in deployed._flatten_layers()}),
           "mixed_agreement": float(np.mean(mixed.predict(x, verbose=0).argmax(-1)
                                            == deployed.predict(x, verbose=0).argmax(-1)))}
    for path in export(run, "tflite", {"quantize": "none,int8"}):
        if path.suffix == ".tflite":
            v = verify(path, run)
            got[path.name] = {k: v[k] for k in KEYS if k in v}
    if "bf16" in name:
        export(run, "onnx")
        v = json.loads((run / "export" / "onnx" / "verify.json").read_text())["model.onnx"]
        got["model.onnx"] = {k: v[k] for k in KEYS if k in v}
    report[name] = got

# A custom layer that makes a layer in __init__ without passing its dtype, in a nested model.
@keras.saving.register_keras_serializable("precision_test")
class Block(keras.layers.Layer):
    def __init__(self, units=4, **kwargs):
        super().__init__(**kwargs)
        self.units, self.inner = units, keras.layers.Dense(units)

    def call(self, x):
        return self.inner(x)

    def get_config(self):
        return {**super().get_config(), "units": self.units}

keras.config.set_dtype_policy("mixed_bfloat16")
inner = keras.Sequential([keras.Input((3,)), Block(4), keras.layers.Dense(2)])
outer = keras.Model(*(lambda i: (i, inner(i)))(keras.Input((3,))))
keras.config.set_dtype_policy("float32")
copy = float32_model(outer)
z = np.random.default_rng(0).normal(size=(5, 3)).astype("float32")
report["custom"] = {
    "policies": sorted({layer.dtype_policy.name for layer in copy._flatten_layers()}),
    "same_weights": all(np.array_equal(a, b) for a, b in zip(outer.get_weights(), copy.get_weights())),
    "max_abs_diff": float(np.abs(outer.predict(z, verbose=0) - copy.predict(z, verbose=0)).max()),
    "unchanged": float32_model(copy) is copy,
}
(root / "job.json").write_text(json.dumps(report))
"""


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    root = tmp_path_factory.mktemp("precision")
    proc = run_python(JOB, root, env={"KERAS_BACKEND": "tensorflow"})
    return root, {**read_json(root / "job.json"), "stderr": proc.stderr}


RUNS = ("tensorflow-bf16", "jax-bf16", "torch-bf16", "tensorflow-f16")


@pytest.mark.slow
@pytest.mark.parametrize("name", RUNS)
def test_a_mixed_precision_run_exports_and_verifies_in_float32_and_int8(mixed, name):
    root, job = mixed
    got = job[name]
    assert got["policies"] == ["float32"]
    assert got["mixed_agreement"] >= 0.9  # the deployed float32 model is the trained one
    assert got["model_float32.tflite"]["agreement"] == 1.0
    assert got["model_float32.tflite"]["max_abs_diff"] <= 1e-4
    assert got["model_int8.tflite"]["agreement"] >= 0.9
    if "bf16" in name:
        assert got["model.onnx"]["agreement"] == 1.0 and got["model.onnx"]["max_abs_diff"] <= 1e-4
    meta = read_json(root / name / "export" / "tflite" / "model.json")
    assert {f[k]["dtype"] for f in meta["files"].values() for k in ("input", "output")} == {"float32", "int8"}


@pytest.mark.slow
def test_custom_and_nested_layers_are_rebuilt_in_float32(mixed):
    _, job = mixed
    custom = job["custom"]
    assert custom["policies"] == ["float32"] and custom["same_weights"] and custom["unchanged"]
    assert custom["max_abs_diff"] <= 0.05  # bf16 against float32 arithmetic, same weights


@pytest.mark.slow
def test_a_mixed_float16_run_loads_its_optimizer_without_a_warning(mixed):
    """Its LossScaleOptimizer's variables load when the model loads under the policy it trained with."""
    _, job = mixed
    assert "Skipping variable loading for optimizer" not in job["stderr"]
