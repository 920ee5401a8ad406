"""The ``tflite`` exporter: every quantization mode converts, runs on LiteRT and matches Keras."""

import json

import pytest
from conftest import one_line_error, read_json, run_cli, run_python

pytestmark = pytest.mark.slow

# One TensorFlow process exports every mode of the TensorFlow run and verifies each on LiteRT.
EXPORT_ALL = """
import json, sys
from core import export, verify
from tflite import TFLiteModel
run = sys.argv[1]
results = {}
paths = export(run, "tflite", {"quantize": "all"})  # one SavedModel, every variant
results["written"] = [str(p) for p in paths]
for quantize, lite in zip(("none", "float16", "dynamic", "int8", "int16x8"), paths):
    model = TFLiteModel(lite)
    results[quantize] = {
        "path": str(lite),
        "verify": verify(lite, run),
        "ops": model.op_names(),
        "dtypes": sorted({t["dtype"] for t in model.tensor_dtypes()}),
        "io": [model.input_dtype.name, model.output_dtype.name],
    }
(lite,) = [p for p in export(run, "tflite", {"quantize": "int8", "per_channel": False}) if p.suffix == ".tflite"]
results["int8_pertensor"] = {"path": str(lite), "verify": verify(lite, run)}
json.dump(results, open(run + "/export_all.json", "w"))
"""


@pytest.fixture(scope="module")
def exported(trained):
    run = trained("tensorflow")
    run_python(EXPORT_ALL, run, env={"KERAS_BACKEND": "tensorflow"})
    return run, read_json(run / "export_all.json")


def test_float32_matches_keras(exported):
    _, results = exported
    v = results["none"]["verify"]
    assert v["max_abs_diff"] <= 1e-4 and v["agreement"] == 1.0
    assert v["tflite_accuracy"] == v["keras_accuracy"]
    assert results["none"]["path"].endswith("export/tflite/model_float32.tflite")


def test_int8_keeps_accuracy(exported):
    _, results = exported
    v = results["int8"]["verify"]
    assert v["agreement"] >= 0.97, v
    assert abs(v["tflite_accuracy"] - v["keras_accuracy"]) <= 0.02, v
    assert results["int8"]["io"] == ["int8", "int8"]
    assert "float32" not in results["int8"]["dtypes"], results["int8"]["dtypes"]
    assert "DEQUANTIZE" not in results["int8"]["ops"]
    assert v["size_bytes"] < 0.45 * results["none"]["verify"]["size_bytes"]


def test_per_tensor_int8_is_smaller(exported):
    """One scale per weight tensor instead of one per output channel (a float32 and an int64 each)."""
    run, results = exported
    r, int8 = results["int8_pertensor"], results["int8"]["verify"]
    assert r["path"].endswith("model_int8-pertensor.tflite")
    assert r["verify"]["size_bytes"] < int8["size_bytes"]
    assert r["verify"]["agreement"] >= 0.95, r["verify"]
    assert read_json(run / "export/tflite/model.json")["files"]["model_int8-pertensor.tflite"]["per_channel"] is False


def test_all_writes_every_variant_then_the_sidecars(exported):
    _, results = exported
    names = [p.rsplit("/", 1)[1] for p in results["written"]]
    assert names[:5] == [
        "model_float32.tflite",
        "model_float16.tflite",
        "model_dynamic.tflite",
        "model_int8.tflite",
        "model_int16x8.tflite",
    ]
    assert set(names[5:]) == {"model.json", "labels.txt"}


def test_int16x8_keeps_16_bit_activations(exported):
    _, results = exported
    r = results["int16x8"]
    assert r["io"] == ["int16", "int16"] and "int16" in r["dtypes"] and "float32" not in r["dtypes"]
    assert r["verify"]["max_abs_diff"] <= results["int8"]["verify"]["max_abs_diff"] + 0.01, r["verify"]


@pytest.mark.parametrize("quantize", ["float16", "dynamic", "int16x8"])
def test_other_modes_convert_and_verify(exported, quantize):
    _, results = exported
    v = results[quantize]["verify"]
    assert v["agreement"] >= 0.97 and abs(v["tflite_accuracy"] - v["keras_accuracy"]) <= 0.02, v
    assert v["size_bytes"] < 0.65 * results["none"]["verify"]["size_bytes"]
    assert v["latency_ms_p50"] > 0


def test_only_builtin_ops(exported):
    _, results = exported
    for quantize, r in results.items():
        if quantize in ("written", "int8_pertensor"):
            continue
        assert not [op for op in r["ops"] if op.startswith("Flex") or op == "CUSTOM"], (quantize, r["ops"])


def test_sidecars_describe_every_file(exported):
    run, _ = exported
    out = run / "export" / "tflite"
    assert (out / "labels.txt").read_text().split() == [str(i) for i in range(10)]
    meta = read_json(out / "model.json")
    assert meta["task"] == "classification" and meta["input_shape"] == [8, 8, 1]
    assert meta["class_names"] == [str(i) for i in range(10)]
    assert meta["source_run"] == str(run.resolve()) and meta["trained_backend"] == "tensorflow"
    assert set(meta["files"]) == {
        "model_float32.tflite",
        "model_float16.tflite",
        "model_dynamic.tflite",
        "model_int8.tflite",
        "model_int16x8.tflite",
        "model_int8-pertensor.tflite",
    }
    int8 = meta["files"]["model_int8.tflite"]
    assert int8["input"]["dtype"] == "int8" and int8["input"]["shape"] == [-1, 8, 8, 1]
    assert int8["input"]["quantization"]["scale"] > 0
    assert meta["files"]["model_float32.tflite"]["input"]["dtype"] == "float32"


def test_metadata_inside_each_file_equals_model_json(exported):
    """Each .tflite carries model.json's top level and its own entry (all but its sizes and the
    export's diagnostics: the per-layer errors stay in model.json), and model.json's sizes are
    those of the file with its metadata in."""
    import gzip

    from plugins.deployment.tflite.metadata import DIAGNOSTICS, read_run_metadata

    run, _ = exported
    out = run / "export" / "tflite"
    meta = read_json(out / "model.json")
    for name, entry in meta["files"].items():
        embedded = read_run_metadata(out / name)
        assert embedded == {
            **{k: v for k, v in meta.items() if k != "files"},
            "files": {name: {k: v for k, v in entry.items() if not k.endswith("_bytes") and k not in DIAGNOSTICS}},
        }
        assert ("layer_errors" in entry) == (entry["quantize"] in ("int8", "int16x8")), (name, list(entry))
        data = (out / name).read_bytes()
        assert entry["size_bytes"] == len(data) and entry["gzip_bytes"] == len(gzip.compress(data, 9, mtime=0))


def test_the_training_input_range_and_scaling_are_recorded(exported):
    """model.json and the metadata inside each file record the training inputs' range and the
    scaling the dataset applied (digits: scikit-learn's 0-16 counts / 16), which ``python -m tflite``
    warns with and applies on --normalize (issue 14)."""
    from plugins.deployment.tflite.metadata import read_run_metadata

    run, _ = exported
    out = run / "export" / "tflite"
    meta = read_json(out / "model.json")
    assert meta["input_range"] == {"min": 0.0, "max": 1.0, "samples": meta["input_range"]["samples"]}
    assert meta["input_range"]["samples"] > 1000  # the whole training split
    assert meta["normalization"] == {"scale": 1 / 16, "offset": 0.0, "raw_range": [0, 16]}
    for name in meta["files"]:
        embedded = read_run_metadata(out / name)
        assert embedded["input_range"] == meta["input_range"] and embedded["normalization"] == meta["normalization"]


def test_device_runner_uses_sidecar_labels(exported):
    """``python -m tflite`` on an exported model prints labels from labels.txt."""
    run, _ = exported
    proc = run_python(
        """
        import sys, numpy as np
        from plugins.datasets.digits import load
        x, y = load().test
        np.save(sys.argv[1], x[:3])
        print("LABELS", " ".join(str(v) for v in y[:3]))
    """,
        run / "three.npy",
    )
    labels = proc.stdout.split("LABELS")[1].split()
    import subprocess
    import sys

    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "tflite",
            run / "export/tflite/model_int8.tflite",
            "--input",
            run / "three.npy",
            "--top",
            "1",
            "--json",
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    predicted = [p["top"][0]["label"] if "top" in p else None for p in json.loads(out.stdout)["predictions"]]
    assert sum(p == t for p, t in zip(predicted, labels)) >= 2, (predicted, labels)


def test_a_jax_run_exports_in_one_command(trained):
    """A model trained under JAX exports with one ``kerastack export`` (TF runs in its own process).
    (test_zoo.py exports runs of every family trained under JAX and torch.)"""
    run = trained("jax")
    proc = run_cli("export", run, "--to", "tflite")
    assert proc.returncode == 0, proc.stderr
    lite = run / "export/tflite/model_float32.tflite"
    assert str(lite) in proc.stdout.split()
    proc = run_cli("verify", lite, "--run", run, "--json")
    assert proc.returncode == 0, proc.stderr
    v = json.loads(proc.stdout)
    assert v["max_abs_diff"] <= 1e-4 and v["agreement"] == 1.0, v
    assert set(v) >= {"tflite_accuracy", "keras_accuracy", "agreement", "max_abs_diff", "size_bytes", "latency_ms_p50"}


def test_bad_options_are_usage_errors(trained):
    run = trained("tensorflow")
    line = one_line_error(run_cli("export", run, "--to", "tflite", "--opt", "quantize=int4"), 2)
    assert "quantize='int4' is not one of none, float16, dynamic, int8, int16x8, all" in line
    line = one_line_error(run_cli("export", run, "--to", "tflite", "--opt", "calibration_samples=lots"), 2)
    assert "calibration_samples='lots': expected an integer" in line


def test_verify_rejects_a_file_that_is_not_a_model(trained, tmp_path):
    bogus = tmp_path / "bogus.tflite"
    bogus.write_bytes(b"not a flatbuffer at all")
    line = one_line_error(run_cli("verify", bogus, "--run", trained("tensorflow")), 1)
    assert "bogus.tflite" in line


ERF_LAYERS = """
import keras


@keras.saving.register_keras_serializable(package="erftest")
class Erf(keras.layers.Layer):
    def call(self, x):
        return keras.ops.erf(x)
"""

ERF_PLUGIN = """
from core import hookimpl


@hookimpl
def register_architectures(register):
    register("erfnet", build, summary="a Dense net with an erf activation (no LiteRT builtin)")


def build(spec):
    import keras
    from erf_layers import Erf

    inputs = keras.Input(spec.input_shape)
    x = Erf()(keras.layers.Dense(16)(keras.layers.Flatten()(inputs)))
    return keras.Model(inputs, keras.layers.Dense(spec.num_classes, activation="softmax")(x))
"""


def test_unsupported_op_is_named_unless_select_ops_allowed(tmp_path):
    """A custom layer whose op LiteRT lacks: the error names the op; allow_select_ops converts it."""
    (tmp_path / "erf_layers.py").write_text(ERF_LAYERS)
    (tmp_path / "erfplugin.py").write_text(ERF_PLUGIN)
    proc = run_python(
        """
        import sys
        from core import KerastackError, export, train
        from tflite import TFLiteModel
        run = train("erfnet", "digits", epochs=1, seed=0, out=sys.argv[1], plugins=["erfplugin"], verbose=0)
        try:
            export(run.path, "tflite")
        except KerastackError as exc:
            print("ERROR", exc)
        paths = export(run.path, "tflite", {"allow_select_ops": True})
        print("OPS", TFLiteModel(paths[0]).op_names())
    """,
        tmp_path / "run",
        env={"PYTHONPATH": str(tmp_path), "KERAS_BACKEND": "tensorflow"},
    )
    error = proc.stdout.split("ERROR ", 1)[1].splitlines()[0]
    assert "LiteRT builtin ops cannot run TensorFlow op(s) Erf" in error
    assert "allow_select_ops=true" in error
    assert "FlexErf" in proc.stdout.split("OPS", 1)[1]
    assert read_json(tmp_path / "run" / "run.json")["custom_modules"] == ["erf_layers"]
    assert not list((tmp_path / "run" / "export" / "tflite").glob(".*")), "temporary files left behind"
