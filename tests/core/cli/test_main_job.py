"""``kerastack run``: the README's main job, end to end."""

import re

import pytest
from conftest import read_json, run_cli

pytestmark = pytest.mark.slow


def test_main_job_prints_table_and_int8_keeps_accuracy(tmp_path):
    out = tmp_path / "main"
    proc = run_cli("run", "--out", out, "--epochs", "8")
    assert proc.returncode == 0, proc.stderr
    rows = dict(re.findall(r"^(keras \(tensorflow\)|tflite float32|tflite int8)\s+([0-9.]+)", proc.stdout, re.M))
    assert set(rows) == {"keras (tensorflow)", "tflite float32", "tflite int8"}, proc.stdout
    keras_acc, f32, int8 = (float(rows[k]) for k in ("keras (tensorflow)", "tflite float32", "tflite int8"))
    assert keras_acc >= 0.9 and f32 == keras_acc
    assert abs(int8 - keras_acc) <= 0.02
    assert abs(read_json(out / "metrics.json")["test_accuracy"] - keras_acc) < 1e-4
    # What the job is doing, stage by stage, with the time each took.
    stages = re.findall(r"^done: (.+) \([0-9.]+ s\)$", proc.stdout, re.M)
    assert stages == [
        "training cnn on digits",
        "keras latency",
        "export float32",
        "verify float32",
        "export int8",
        "verify int8",
    ], proc.stdout
    # One way of measuring latency, said on the page (it was a bare model() call here, another in the report).
    assert "Keras predict_on_batch in this process (tensorflow), LiteRT invoke() at 1 thread" in proc.stdout
    assert {p.name for p in (out / "export/tflite").iterdir()} == {
        "model_float32.tflite",
        "model_int8.tflite",
        "model.json",
        "labels.txt",
        "verify.json",
    }
    verified = read_json(out / "export/tflite/verify.json")
    assert verified["model_int8.tflite"]["tflite_accuracy"] == pytest.approx(int8, abs=1e-4)
    assert {"curves.png", "confusion.png", "predictions.npz", "best.keras"} <= {p.name for p in out.iterdir()}
    # No native log noise on the user's terminal.
    assert not re.search(r"^[IWE]\d{4} ", proc.stderr, re.M), proc.stderr
    assert "absl::InitializeLog" not in proc.stderr and "XNNPACK" not in proc.stderr
    # verify() and the latency reuse one loaded model: no fresh predict function traced per call.
    assert "retracing" not in proc.stderr, proc.stderr
