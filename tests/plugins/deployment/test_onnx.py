"""The ``onnx`` exporter: Keras → tf2onnx → model.onnx, checked on ONNX Runtime against Keras."""

import json

import pytest
from conftest import read_json, run_python

pytestmark = pytest.mark.slow
pytest.importorskip("onnxruntime", reason="the onnx exporter's optional packages are not installed")

# One TensorFlow process: train a tiny run, export it, then the error paths in the same process.
JOB = """
import json, sys
import numpy as np
from core import KerastackError, UsageError, export, train
out = sys.argv[1]
run = train("cnn", "digits", backend="tensorflow", epochs=1, seed=0, out=out, verbose=0,
            hparams={"filters": 8, "dense": 32})
report = {"paths": [str(p) for p in export(out, "onnx")]}
import onnx
model = onnx.load(report["paths"][0])
onnx.checker.check_model(model)
report["opset"] = max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
report["input"] = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
report["opset13"] = [str(p) for p in export(out, "onnx", {"opset": 13, "verify": False})]
report["opset13_version"] = max(o.version for o in onnx.load(report["opset13"][0]).opset_import
                                if o.domain in ("", "ai.onnx"))
errors = {}
try:
    export(out, "onnx", {"opset": -1})
except UsageError as exc:
    errors["opset"] = str(exc)
for hidden in ("tf2onnx", "onnxruntime"):
    saved = sys.modules.get(hidden)
    sys.modules[hidden] = None  # importlib.util.find_spec now reports it missing
    try:
        export(out, "onnx")
    except KerastackError as exc:
        errors[hidden] = str(exc)
    finally:
        sys.modules.pop(hidden)
        if saved is not None:
            sys.modules[hidden] = saved
report["errors"] = errors
json.dump(report, open(out + "/job.json", "w"))
"""


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    run = tmp_path_factory.mktemp("onnx") / "run"
    run_python(JOB, run, env={"KERAS_BACKEND": "tensorflow"})
    return run, read_json(run / "job.json")


def test_writes_a_valid_onnx_model_with_a_dynamic_batch(exported):
    run, job = exported
    out = run / "export" / "onnx"
    assert job["paths"] == [str(out / "model.onnx"), str(out / "verify.json")]
    assert isinstance(job["input"][0], str) and job["input"][1:] == [8, 8, 1]
    assert job["opset13_version"] == 13 and job["opset"] >= 13
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "temporary files left behind"


def test_onnx_runtime_matches_keras(exported):
    run, _ = exported
    v = read_json(run / "export" / "onnx" / "verify.json")["model.onnx"]
    assert v["split"] == "test" and v["samples"] == 270
    assert v["max_abs_diff"] <= 1e-4 and v["agreement"] == 1.0
    assert v["accuracy"] == v["keras_accuracy"]
    assert v["threads"] == 1 and 0 < v["latency_ms_p50"] <= v["latency_ms_p90"]
    assert v["runtime"].startswith("onnxruntime ")


def test_errors_name_the_option_or_the_missing_package(exported):
    _, job = exported
    errors = job["errors"]
    assert "opset must be 0 (default) or an ONNX opset number, got -1" in errors["opset"]
    assert errors["tf2onnx"] == "exporter 'onnx' needs the package(s) tf2onnx: pip install tf2onnx==1.17.0"
    assert errors["onnxruntime"].startswith(
        "exporter 'onnx' needs the package(s) onnxruntime: pip install onnxruntime==1.31.1"
    )
    assert "--opt verify=false" in errors["onnxruntime"]
    assert all("\n" not in e for e in errors.values()), json.dumps(errors, indent=1)
