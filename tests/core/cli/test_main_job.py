"""``kerastack run``: the README's main job, end to end (tracked: one MLflow run holds all of it)."""

import csv
import re

import pytest
from conftest import read_json, run_cli

pytestmark = pytest.mark.slow


def test_main_job_prints_table_and_int8_keeps_accuracy(tmp_path):
    out = tmp_path / "main"
    # Tracked: the whole job is one MLflow run, in the store MLFLOW_TRACKING_URI names (as for train).
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    (tmp_path / "store").mkdir()
    proc = run_cli("run", "--out", out, "--epochs", "8", "--track", "mlflow", env={"MLFLOW_TRACKING_URI": uri})
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
    # Tracking adds nothing to the page (MLflow's start-up lines are kept quiet).
    assert "mlflow" not in proc.stderr.lower() and "mlflow" not in proc.stdout.lower(), proc.stderr
    # verify() and the latency reuse one loaded model: no fresh predict function traced per call.
    assert "retracing" not in proc.stderr, proc.stderr
    _check_tracked(out, uri, {"model_float32.tflite": f32, "model_int8.tflite": int8})


def _check_tracked(out, uri, accuracies):
    """One MLflow run holds the training (parameters, a val_loss point per epoch, the run's files), both
    exports with verify.json, and each verify's numbers; run.json names it."""
    from mlflow import MlflowClient

    entry = read_json(out / "run.json")["tracking"]
    assert entry["uri"] == uri and "error" not in entry, entry
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert [r.info.run_id for r in runs] == [entry["run_id"]]
    logged = runs[0]
    assert logged.info.status == "FINISHED" and logged.info.run_name == "main"
    params = logged.data.params
    assert params["architecture.name"] == "cnn" and params["dataset.name"] == "digits", params
    assert params["training.epochs"] == "8"
    with open(out / "history.csv") as f:
        history = [(int(r["epoch"]), pytest.approx(float(r["val_loss"]))) for r in csv.DictReader(f)]
    points = sorted((m.step, m.value) for m in client.get_metric_history(entry["run_id"], "val_loss"))
    assert len(points) == 8 and points == history, points
    files = {a.path for a in client.list_artifacts(entry["run_id"])}
    assert {"model.keras", "run.json", "history.csv", "metrics.json", "curves.png"} <= files, files
    exported = {a.path.rsplit("/", 1)[-1] for a in client.list_artifacts(entry["run_id"], "export/tflite")}
    assert {"model_float32.tflite", "model_int8.tflite", "model.json", "verify.json"} <= exported, exported
    metrics = logged.data.metrics
    for name, accuracy in accuracies.items():
        assert metrics[f"verify/{name}/tflite_accuracy"] == pytest.approx(accuracy, abs=1e-4), name
        assert metrics[f"verify/{name}/latency_ms_p50"] > 0 and metrics[f"verify/{name}/threads"] == 1
