"""Keras-native QAT (``plugins.deployment.tflite.qat``, ``--opt qat=native``): the rewrite, training under each backend,
and an int8 LiteRT file that computes what the fake-quantized Keras model computes."""

import pytest
from conftest import digits_cnn, read_json, run_python

pytestmark = pytest.mark.slow

BACKENDS = ("tensorflow", "jax", "torch")

# The rewrite, checked on its own (no training), then QAT fine-tuning under each backend (children
# of this TensorFlow process), each file compared with the fake-quantized model it came from.
QAT_JOB = """
import json, shutil, sys
import numpy as np
import keras
from core import KerastackError, UsageError, export, load_run
from plugins.datasets.digits import load
from plugins.deployment.tflite import qat
from plugins.deployment.tflite.convert import check_integer_only, convert
from plugins.deployment.tflite.options import TFLiteOptions
from tflite import TFLiteModel

run, backends = sys.argv[1], sys.argv[2].split(",")
results = {}
x, y = load().test

# -- the rewrite of the run's model
model = load_run(run).model
qmodel, plan = qat.quantize_model(model)
ranges = qat.calibrate(qmodel, load().train[0][:256])
config_ok = {}
for layer in qmodel.layers:
    cls = type(layer)
    if cls.__module__ == "plugins.deployment.tflite.qat_layers" or cls.__name__.startswith("Quant") or cls.__name__ == "ActivationQuantizer":
        config_ok[cls.__name__] = cls.from_config(layer.get_config()).get_config() == layer.get_config()
results["rewrite"] = {"folded": plan["folded"], "quantizers": plan["quantizers"], "config_ok": config_ok,
                      "registered": keras.saving.get_registered_name(type(qmodel.layers[1])),
                      "calibrated": ranges,
                      "classes": [type(l).__name__ for l in qmodel.layers]}

# -- refused layers, and the float-island check
inputs = keras.Input((8, 3))
lstm = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.LSTM(4, name="memory")(inputs)))
try:
    qat.quantize_model(lstm)
except UsageError as exc:
    results["refused"] = str(exc)
# A hand-made model whose middle Dense has no fake quantization.
classes = qat.custom_objects()
inputs = keras.Input((8, 8, 1))
h = keras.layers.Flatten()(classes["ActivationQuantizer"](name="in_q")(inputs))
h = keras.layers.Dense(16, activation="relu", name="hidden")(h)
h = classes["ActivationQuantizer"](name="head_q")(classes["QuantDense"](10, name="head")(h))
island = keras.Model(inputs, keras.layers.Softmax()(h))
qat.calibrate(island, x[:64])
flatbuffer, _ = convert(island, "qat", TFLiteOptions())
try:
    check_integer_only(flatbuffer, "int8", "qat=native", [l.name for l in island.layers])
except KerastackError as exc:
    results["island"] = str(exc)

# -- QAT under each backend, exported through the tflite exporter
for backend in backends:
    paths = export(run, "tflite", {"qat": "native", "qat_epochs": 1, "finetune_backend": backend})
    lite = TFLiteModel(paths[0])
    fake_quant = qat.load(f"{run}/export/tflite/qat_native.keras")
    expected = np.asarray(fake_quant.predict(x, verbose=0))
    got = lite.predict(x)
    learned = qat.ranges(fake_quant)
    scales = [t["quantization"][0] for t in lite._interpreter.get_tensor_details()
              if np.dtype(t["dtype"]).name == "int8" and t["quantization"][0] > 0]

    def error(name):
        low, high = learned[name]
        want = (high - low) / 255
        return min(abs(s - want) / want for s in scales)

    meta = json.load(open(f"{run}/export/tflite/model.json"))["files"][paths[0].name]
    results[backend] = {
        "paths": [str(p) for p in paths],
        "agreement": float(np.mean(got.argmax(-1) == expected.argmax(-1))),
        "tflite_accuracy": float(np.mean(got.argmax(-1) == y)),
        "keras_accuracy": float(np.mean(expected.argmax(-1) == y)),
        "dtypes": sorted({t["dtype"] for t in lite.tensor_dtypes()}),
        "ops": sorted(set(lite.op_names())),
        "io": [lite.input_dtype.name, lite.output_dtype.name],
        "input_scale": float(lite.input_details["quantization"][0]),
        "input_range": learned["image_quant"],
        "scale_errors": {name: error(name) for name in learned},
        "meta": meta,
    }
json.dump(results, open(f"{run}/qat_results.json", "w"))
"""


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    run = digits_cnn(tmp_path_factory)
    run_python(QAT_JOB, run, ",".join(BACKENDS), env={"KERAS_BACKEND": "tensorflow"})
    return read_json(run / "qat_results.json")


def test_rewrite_folds_batchnorm_and_places_quantizers(results):
    rewrite = results["rewrite"]
    assert rewrite["folded"] == [
        ["conv2d", "batch_normalization"],
        ["conv2d_1", "batch_normalization_1"],
        ["conv2d_2", "batch_normalization_2"],
        ["conv2d_3", "batch_normalization_3"],
    ]
    # On the input, after each activation (conv+BN+ReLU fuse), after global pooling (LiteRT's MEAN
    # needs its own range) and Dense, before the softmax; none after pooling/dropout or softmax.
    assert rewrite["quantizers"] == [
        "image_quant",
        "re_lu_quant",
        "re_lu_1_quant",
        "re_lu_2_quant",
        "re_lu_3_quant",
        "global_average_pooling2d_quant",
        "dense_quant",
        "probabilities_quant",
    ]
    assert "BatchNormalization" not in rewrite["classes"]
    assert rewrite["classes"].count("QuantConv2D") == 4 and rewrite["classes"].count("QuantDense") == 2
    assert rewrite["registered"] == "kerastack>ActivationQuantizer"
    assert rewrite["config_ok"] and all(rewrite["config_ok"].values()), rewrite["config_ok"]
    assert rewrite["calibrated"]["image_quant"] == [0.0, 1.0]


def test_unsupported_layers_are_refused_by_name(results):
    assert "native QAT: layer 'memory' (LSTM) is not supported" in results["refused"]


def test_a_layer_without_fake_quant_is_a_named_float_island(results):
    assert "float island" in results["island"]
    # The converter dequantizes before the Flatten that feeds it: the island is Flatten → hidden → head.
    assert "at layer(s) 'flatten', 'hidden', 'head'" in results["island"], results["island"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_trains_under_each_backend(results, backend):
    r = results[backend]
    assert r["meta"]["qat"]["backend"] == backend
    assert r["paths"][0].endswith("export/tflite/model_int8-qat-native.tflite")
    assert r["paths"][-1].endswith("export/tflite/qat_native.keras")


@pytest.mark.parametrize("backend", BACKENDS)
def test_int8_file_matches_the_fake_quantized_model(results, backend):
    r = results[backend]
    assert r["agreement"] >= 0.99, r
    assert r["dtypes"] == ["int32", "int8"], r["dtypes"]  # no float32 tensor anywhere
    assert "DEQUANTIZE" not in r["ops"] and r["io"] == ["int8", "int8"]
    assert r["tflite_accuracy"] >= r["meta"]["qat"]["float"]["accuracy"] - 0.02, r


@pytest.mark.parametrize("backend", BACKENDS)
def test_scales_are_the_learned_ranges(results, backend):
    r = results[backend]
    low, high = r["input_range"]
    assert abs(r["input_scale"] - (high - low) / 255) <= 1e-4 * (high - low) / 255, r
    # Every quantizer's range is some int8 tensor's scale in the file.
    assert max(r["scale_errors"].values()) <= 1e-4, r["scale_errors"]


def test_model_json_records_the_training(results):
    qat = results["tensorflow"]["meta"]["qat"]
    assert qat["epochs"] == 1 and qat["quantizers"] == 8 and len(qat["folded"]) == 4
    assert set(qat["ranges"]) == set(results["rewrite"]["quantizers"])
    assert results["tensorflow"]["meta"]["gzip_bytes"] < results["tensorflow"]["meta"]["size_bytes"]
