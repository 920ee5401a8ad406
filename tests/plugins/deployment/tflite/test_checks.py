"""What a written .tflite is checked for (issue 23): an int8 regression output that clips the
predictions (a sine series of mean 50 ± 10 through the ``csv`` dataset, on a barely trained net
whose outputs calibration sees near 0), and float ops inside an int8 file (an ``elu`` layer: no
int8 kernel, a ``DEQUANTIZE → ELU → QUANTIZE`` island). Both must reach model.json, stderr and
the export report; verify and the device runner count the predictions that came out clipped."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import read_json, run_python

pytestmark = pytest.mark.slow

HERE = Path(__file__).parent
ENV = {
    "KERAS_BACKEND": "tensorflow",
    "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
}

# One TensorFlow process: train 1 epoch at a tiny learning rate (outputs near 0, targets near 50),
# export int8 (default calibration), then int8 with float I/O calibrated on 2 samples (many test
# predictions beyond what calibration saw), and dynamic (float activations); verify; the report.
JOB = """
import contextlib, io, json, sys
from core import export, train, verify
from core.deploy.export import write_report
csv_path, out = sys.argv[1], sys.argv[2]
train("outlier", "csv", backend="tensorflow", epochs=1, learning_rate=1e-5, seed=0, out=out, verbose=0,
      plugins=["outlier_plugin"], hparams={"outlier": 0.0, "activation": "elu"},
      data_options={"path": csv_path, "target": "y"})
import numpy as np
from core import load_dataset, load_run
np.save(f"{out}/x_test.npy", load_dataset(load_run(out)).test[0])  # for the device runner
results = {"stderr": {}}
for options in ({"quantize": "int8"}, {"quantize": "int8", "io": "float", "calibration_samples": 2},
                {"quantize": "dynamic"}):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        export(out, "tflite", options)
    results["stderr"][json.dumps(options)] = err.getvalue()
results["verify"] = {name: verify(f"{out}/export/tflite/{name}", out, latency_runs=5)
                     for name in ("model_int8.tflite", "model_int8-floatio.tflite", "model_dynamic.tflite")}
write_report(out, "tflite")
json.dump(results, open(f"{out}/checks.json", "w"))
"""


def write_sine(path, n=600, seed=0):
    """A windowed time series as a table: 8 lags of y = 50 + 10 sin(t / 6) + noise, and y."""
    rng = np.random.default_rng(seed)
    y = 50 + 10 * np.sin(np.arange(n) / 6) + rng.normal(0, 0.5, n)
    lines = [",".join([f"lag{k}" for k in range(8, 0, -1)] + ["y"])]
    lines += [",".join(f"{v:.4f}" for v in [*y[i - 8 : i], y[i]]) for i in range(8, n)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    folder = tmp_path_factory.mktemp("checks")
    run = folder / "run"
    run_python(JOB, write_sine(folder / "sine.csv"), run, env=ENV)
    meta = read_json(run / "export" / "tflite" / "model.json")
    return run, read_json(run / "checks.json"), meta["files"]


def test_an_int8_output_that_clips_regression_targets_is_said(checked):
    run, results, files = checked
    entry = files["model_int8.tflite"]["output_range"]
    low, high = entry["limits"]
    t_low, t_high = entry["targets"]
    assert 38 < t_low < 42 and 58 < t_high < 62, entry  # the training targets: 50 ± 10 and noise
    assert high < t_high and entry["clipped"] is True and entry["output_layer"] == "head", entry
    assert entry["margin"] == pytest.approx(0.05 * (t_high - t_low))
    warning = results["stderr"][json.dumps({"quantize": "int8"})]
    assert f"model_int8.tflite: its integer output covers [{low:.6g}, {high:.6g}]" in warning, warning
    assert "quantize=dynamic" in warning and "keep_float=head io=float" in warning
    # Float activations clip nothing: no range to check, no warning.
    assert "output_range" not in files["model_dynamic.tflite"]
    assert "warning" not in results["stderr"][json.dumps({"quantize": "dynamic"})]


def test_verify_and_the_device_runner_count_the_clipped_predictions(checked):
    """Calibrated on 2 samples, the float-I/O int8 file clips most test predictions; its float output is
    dequantized from the last op's int8 tensor, whose range is the one that clips."""
    import subprocess
    import sys

    run, results, files = checked
    v = results["verify"]["model_int8-floatio.tflite"]
    assert files["model_int8-floatio.tflite"]["output"]["dtype"] == "float32"
    assert (
        v["clipped_outputs"] >= 10
        and v["output_limits"] == files["model_int8-floatio.tflite"]["output_range"]["limits"]
    )
    assert v["max_abs_diff"] > 1e-3  # Keras's predictions lie beyond what the file can give
    assert results["verify"]["model_dynamic.tflite"].get("clipped_outputs") is None
    report = (run / "export" / "tflite" / "report.md").read_text()
    assert f"Here {v['clipped_outputs']} outputs of the test split came out clipped." in report, report
    # The device runner says so beside its predictions.
    lite = run / "export/tflite/model_int8-floatio.tflite"
    proc = subprocess.run(
        [sys.executable, "-m", "tflite", str(lite), "--input", str(run / "x_test.npy"), "--json"],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(HERE.parents[3])),
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    (warning,) = json.loads(proc.stdout)["warnings"]
    assert "outputs lie at the limit of the model's integer output" in warning
    assert f"tflite: warning: {lite.name}: {warning}" in proc.stderr


def test_float_ops_inside_an_int8_file_are_listed_and_delegate_is_not_an_op(checked):
    run, _, files = checked
    entry = files["model_int8.tflite"]
    assert entry["float_ops"] == {"ELU": 1}, entry
    assert {"DEQUANTIZE", "ELU", "QUANTIZE"} <= set(entry["ops"]) and "DELEGATE" not in entry["ops"], entry["ops"]
    assert "float_ops" not in files["model_dynamic.tflite"]  # float activations throughout: nothing to list
    report = (run / "export" / "tflite" / "report.md").read_text()
    assert "- `model_int8.tflite`: float ops inside the integer file: ELU ×1" in report, report
