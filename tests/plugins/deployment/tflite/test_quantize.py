"""The ``tflite`` exporter's fine-tuning options: tfmot QAT and weight clustering; int16x8 with float
I/O; the errors for options that do not go together. (test_exporter.py: ``quantize=all``.)"""

from pathlib import Path

import pytest
from conftest import digits_cnn, read_json, run_python
from digits_jobs import PRELUDE

from core import UsageError
from plugins.deployment.tflite.exporter import export as tflite_export

# One TensorFlow process exports them all (digits_jobs.PRELUDE: verify() and the run's predictions).
JOB = (
    PRELUDE
    + """
def describe(paths):
    out = {"paths": [str(p) for p in paths], "files": {}}
    meta = json.load(open(f"{run}/export/tflite/model.json"))["files"]
    for p in paths:
        if p.suffix == ".tflite":
            lite = TFLiteModel(p)
            out["files"][p.name] = {"verify": verify(p), "meta": meta[p.name],
                                    "dtypes": sorted({t["dtype"] for t in lite.tensor_dtypes()}),
                                    "io": [lite.input_dtype.name, lite.output_dtype.name],
                                    "ops": sorted(set(lite.op_names()))}
    return out


results["float32"] = describe(export(run, "tflite", {"quantize": "none"}))
results["int16x8_floatio"] = describe(export(run, "tflite", {"quantize": "int16x8", "io": "float"}))
results["tfmot"] = describe(export(run, "tflite", {"qat": "tfmot", "qat_epochs": 1}))
results["clusters"] = describe(export(run, "tflite", {"clusters": 16, "cluster_epochs": 1}))
json.dump(results, open(f"{run}/quant_results.json", "w"))
"""
)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    run = digits_cnn(tmp_path_factory)
    run_python(JOB, run, env={"KERAS_BACKEND": "tensorflow"})
    return read_json(run / "quant_results.json")


@pytest.mark.slow
def test_int16x8_with_float_io(results):
    ((name, f),) = [(n, f) for n, f in results["int16x8_floatio"]["files"].items()]
    assert name == "model_int16x8-floatio.tflite" and f["io"] == ["float32", "float32"]
    assert f["verify"]["agreement"] >= 0.97


@pytest.mark.slow
def test_tfmot_qat_converts_and_keeps_accuracy(results):
    ((name, f),) = results["tfmot"]["files"].items()
    assert name == "model_int8-qat-tfmot.tflite"
    assert f["dtypes"] == ["int32", "int8"] and f["io"] == ["int8", "int8"] and "DEQUANTIZE" not in f["ops"]
    qat = f["meta"]["qat"]
    assert qat["method"] == "tfmot" and qat["float_layers"] == []
    assert f["verify"]["tflite_accuracy"] >= qat["float"]["accuracy"] - 0.02, (f["verify"], qat)


@pytest.mark.slow
def test_clustering_leaves_k_values_per_kernel(results):
    ((name, f),) = results["clusters"]["files"].items()
    assert name == "model_float32-clustered16.tflite"
    clustering = f["meta"]["clustering"]
    assert clustering["unique_weights"] and max(clustering["unique_weights"].values()) <= 16, clustering
    assert clustering["clustered"]["accuracy"] >= clustering["float"]["accuracy"] - 0.03, clustering
    float32 = results["float32"]["files"]["model_float32.tflite"]["meta"]
    assert f["meta"]["gzip_bytes"] < 0.6 * float32["gzip_bytes"], (f["meta"]["gzip_bytes"], float32["gzip_bytes"])
    assert results["clusters"]["paths"][-1].endswith("clustered16.keras")


@pytest.mark.parametrize(
    "options, message",
    [
        ({"qat": "native", "quantize": "float16"}, "qat=native makes an int8 model; quantize='float16' does not apply"),
        ({"qat": "native", "prune": 0.5}, "qat, prune and clusters each fine-tune the model; choose one"),
        ({"prune": 1.5}, "prune is the target sparsity, a fraction in [0, 1); got 1.5"),
        ({"clusters": 1}, "clusters must be 0 (off) or at least 2, got 1"),
        ({"qat": "fancy"}, "qat='fancy' is not one of none, native, tfmot"),
        ({"prune_method": "random"}, "prune_method='random' is not one of native, tfmot"),
        ({"prune": 0.5, "finetune_backend": "numpy"}, "finetune_backend='numpy' is not one of tensorflow, jax, torch"),
        ({"quantize": "dynamic", "per_channel": False}, "per_channel=false applies to quantize=int8 or int16x8"),
        ({"quantize": "int4"}, "quantize='int4' is not one of none, float16, dynamic, int8, int16x8, all"),
        ({"io": "uint16"}, "io='uint16' is not one of auto, int8, uint8, float"),
    ],
)
def test_options_that_do_not_go_together_are_usage_errors(options, message):
    """Checked before anything is loaded or converted (no model needed: ``ctx`` is never read)."""
    with pytest.raises(UsageError) as error:
        tflite_export(None, **options)
    assert message in str(error.value)


def test_export_signature_is_the_options_dataclass():
    """The registry reads the options from ``export()``'s signature; ``TFLiteOptions`` must agree."""
    import dataclasses
    import inspect

    from plugins.deployment.tflite.options import TFLiteOptions

    parameters = list(inspect.signature(tflite_export).parameters.values())[1:]
    fields = dataclasses.fields(TFLiteOptions)
    assert [(p.name, p.default) for p in parameters] == [(f.name, f.default) for f in fields]
    assert all(type(f.default) is f.type for f in fields), fields


def test_quantize_lists_are_parsed():
    from plugins.deployment.tflite.options import VARIANTS, TFLiteOptions

    assert TFLiteOptions(quantize="int8, none,int8").validate().variants == ("int8", "none")
    assert TFLiteOptions(quantize="all").variants == VARIANTS
    with pytest.raises(UsageError, match="quantize='int8,int3' is not one of"):
        TFLiteOptions(quantize="int8,int3").validate()


def test_importing_the_exporter_imports_no_framework():
    """Every module of the package imports keras, TensorFlow and tfmot inside functions only (the
    QAT layer classes are defined on first use)."""
    import subprocess
    import sys

    modules = [p.stem for p in Path(tflite_export.__code__.co_filename).parent.glob("*.py") if p.stem != "__init__"]
    code = (
        "import sys, importlib\n"
        f"for m in {modules!r}: importlib.import_module('plugins.deployment.tflite.' + m)\n"
        "loaded = [m for m in ('keras', 'tensorflow', 'jax', 'torch', 'tf_keras') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
