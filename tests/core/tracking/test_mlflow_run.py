"""``--track mlflow``: what a tracked run leaves in MLflow, read back through ``MlflowClient``.

Each backend trains mlp on iris for a few epochs in its own ``kerastack`` process, against the
default SQLite store (``runs/mlflow.db`` beside the run folder); then one run against a real
``mlflow server`` on 127.0.0.1, and one after that server is gone.
"""

import csv
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import read_json, run_cli

COMMON = ["--arch", "mlp", "--data", "iris", "--seed", "0", "--quiet"]
# A dead server must fail fast: no retries, a short timeout.
FAST_FAIL = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "3"}
PLUGIN = """
import os
import signal
import time
import urllib.request

from core import hookimpl


@hookimpl
def register_callbacks(register):
    register("crash_after_epoch", crash_after_epoch, summary="fails after an epoch (tests)")
    register("stop_server", stop_server, summary="stops the mlflow server after epoch 2 (tests)")


def crash_after_epoch():
    import keras

    class Crash(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 == int(os.environ.get("CRASH_AFTER_EPOCH", "0")):
                raise RuntimeError("simulated crash")

    return Crash()


def stop_server():
    import keras

    class StopServer(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:  # epoch 1's metrics are in (epoch 2's are sent in the background)
                os.killpg(int(os.environ["SERVER_PGID"]), signal.SIGTERM)
                for _ in range(300):  # until it no longer answers
                    try:
                        urllib.request.urlopen(os.environ["MLFLOW_TRACKING_URI"] + "/health", timeout=1)
                    except OSError:
                        return
                    time.sleep(0.1)

    return StopServer()
"""


def _client(uri):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _history(run):
    with open(run / "history.csv") as f:
        return list(csv.DictReader(f))


def _check_logged(run, epochs, experiment="kerastack"):
    """The MLflow run named in run.json holds the run's parameters, one metric point per epoch
    (equal to history.csv's), the final test metrics and the run's files; it is finished."""
    entry = read_json(run / "run.json")["tracking"]
    client = _client(entry["uri"])
    logged = client.get_run(entry["run_id"])
    assert logged.info.status == "FINISHED" and logged.info.run_name == run.name
    assert client.get_experiment(logged.info.experiment_id).name == experiment
    params, record = logged.data.params, read_json(run / "run.json")
    assert params["architecture.name"] == "mlp" and params["dataset.name"] == "iris"
    assert params["training.backend"] == record["training"]["backend"]
    assert params["training.epochs"] == str(epochs) and params["training.optimizer"] == "adam"
    assert params["versions.keras"] == record["versions"]["keras"] and "versions.mlflow" in params
    rows = _history(run)
    for name in ("loss", "val_loss", "accuracy"):
        points = sorted((m.step, m.value) for m in client.get_metric_history(entry["run_id"], name))
        assert points == [(int(r["epoch"]), pytest.approx(float(r[name]))) for r in rows], name
    metrics = read_json(run / "metrics.json")
    assert logged.data.metrics["test_accuracy"] == pytest.approx(metrics["test_accuracy"])
    files = {a.path for a in client.list_artifacts(entry["run_id"])}
    assert {"model.keras", "run.json", "history.csv", "metrics.json", "curves.png"} <= files, files
    return entry, client


@pytest.mark.slow
def test_tensorflow_run_and_its_export_in_the_sqlite_store(tmp_path):
    run = tmp_path / "runs" / "tf"
    proc = run_cli("train", *COMMON, "--backend", "tensorflow", "--epochs", "2", "--track", "mlflow", "--out", run)
    assert proc.returncode == 0, proc.stderr
    assert "mlflow" not in proc.stderr.lower(), proc.stderr  # MLflow's own start-up lines are kept quiet
    entry, client = _check_logged(run, 2)
    # The default store: SQLite beside the run folder, artifacts beside it; offline, no server.
    assert entry["uri"] == f"sqlite:///{tmp_path.resolve() / 'runs' / 'mlflow.db'}"
    assert (tmp_path / "runs" / "mlflow.db").is_file() and (tmp_path / "runs" / "mlartifacts").is_dir()

    exported = run_cli("export", run, "--to", "tflite")
    assert exported.returncode == 0, exported.stderr
    files = {a.path for a in client.list_artifacts(entry["run_id"], "export/tflite")}
    assert {"export/tflite/model_float32.tflite", "export/tflite/model.json", "export/tflite/report.md"} <= files
    # The report's verify (1 thread), recorded in verify.json, is in the MLflow run as metrics too.
    assert "export/tflite/verify.json" in files
    verified = read_json(run / "export/tflite/verify.json")["model_float32.tflite"]
    metrics = client.get_run(entry["run_id"]).data.metrics
    for key in ("tflite_accuracy", "latency_ms_p50", "size_bytes"):
        assert metrics[f"verify/model_float32.tflite/{key}"] == pytest.approx(verified[key]), key

    # `kerastack runs` shows the run id, and does not take MLflow's copy of run.json for a run.
    listing = run_cli("runs", tmp_path / "runs")
    assert listing.returncode == 0, listing.stderr
    assert entry["run_id"] in listing.stdout and "mlflow run" in listing.stdout
    assert len([line for line in listing.stdout.splitlines() if " mlp " in line]) == 1, listing.stdout


@pytest.mark.slow
def test_jax_run_failed_then_resumed_continues_the_same_mlflow_run(tmp_path, write_plugin):
    plugin = write_plugin("track_plugin", PLUGIN)
    run = tmp_path / "runs" / "jax"
    args = ["train", *COMMON, "--backend", "jax", "--epochs", "3", "--track", "mlflow", "--out", run]
    crashed = run_cli(
        *args, "--plugin", plugin, "--callback", "crash_after_epoch", env={"CRASH_AFTER_EPOCH": "2"}, cwd=tmp_path
    )
    assert crashed.returncode == 1, crashed.stderr
    entry = read_json(run / "run.json")["tracking"]
    client = _client(entry["uri"])
    assert client.get_run(entry["run_id"]).info.status == "FAILED"

    resumed = run_cli("train", "--resume", run, "--quiet", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    # Nothing of MLflow's in the working directory (its default store would be ./mlflow.db, ./mlruns).
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs", "track_plugin.py"]
    assert read_json(run / "run.json")["tracking"]["run_id"] == entry["run_id"]
    _check_logged(run, 3)  # one point per epoch: 1 and 2 before the crash, 3 after the resume
    assert len(client.search_runs([client.get_run(entry["run_id"]).info.experiment_id])) == 1


@pytest.mark.slow
def test_torch_run_tracked_from_a_config_file(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text(
        'arch = "mlp"\ndata = "iris"\n[training]\nepochs = 2\n[track]\nto = "mlflow"\nexperiment = "iris"\n'
    )
    run = tmp_path / "runs" / "torch"
    proc = run_cli("train", "--config", config, "--backend", "torch", "--seed", "0", "--quiet", "--out", run)
    assert proc.returncode == 0, proc.stderr
    _check_logged(run, 2, experiment="iris")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path):
    """A real ``mlflow server`` on 127.0.0.1, its own SQLite store in ``tmp_path/server``."""
    port = _free_port()
    store = tmp_path / "server"
    store.mkdir()
    mlflow = Path(sys.executable).with_name("mlflow")
    args = [mlflow, "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    args += ["--backend-store-uri", f"sqlite:///{store / 'mlflow.db'}", "--artifacts-destination", str(store / "art")]
    with open(store / "server.log", "wb") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            pass
        assert proc.poll() is None and time.time() < deadline, (store / "server.log").read_text()[-3000:]
        time.sleep(0.3)
    yield {"uri": uri, "pgid": proc.pid, "store": f"sqlite:///{store / 'mlflow.db'}"}
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and its uvicorn worker
    proc.wait(timeout=30)


@pytest.mark.slow
def test_a_real_server_that_goes_away_mid_run(tmp_path, mlflow_server, write_plugin):
    """Epochs are logged over HTTP; the server stops after epoch 2: the training finishes, says so in
    one line."""
    plugin = write_plugin("track_plugin", PLUGIN)
    uri = mlflow_server["uri"]
    env = {"MLFLOW_TRACKING_URI": uri, "SERVER_PGID": str(mlflow_server["pgid"]), **FAST_FAIL}
    run = tmp_path / "runs" / "served"
    args = ["train", *COMMON, "--backend", "jax", "--epochs", "3", "--track", "mlflow", "--out", run]
    proc = run_cli(*args, "--plugin", plugin, "--callback", "stop_server", env=env)
    assert proc.returncode == 0, proc.stderr
    said = [line for line in proc.stderr.splitlines() if "tracking failed" in line]
    assert len(said) == 1 and uri in said[0], proc.stderr
    assert "Traceback" not in proc.stderr
    record = read_json(run / "run.json")
    assert record["status"] == "complete" and len(_history(run)) == 3
    entry = record["tracking"]
    assert entry["uri"] == uri and entry["run_id"] and entry["error"]
    assert not (tmp_path / "runs" / "mlflow.db").exists()  # MLFLOW_TRACKING_URI, not the default store

    # What the server stored before it went away: the parameters, epoch 1 (and 2, if it was in time).
    client = _client(mlflow_server["store"])
    logged = client.get_run(entry["run_id"])
    assert logged.data.params["architecture.name"] == "mlp" and logged.data.params["training.backend"] == "jax"
    history = [(int(r["epoch"]), pytest.approx(float(r["val_loss"]))) for r in _history(run)]
    points = sorted((m.step, m.value) for m in client.get_metric_history(entry["run_id"], "val_loss"))
    assert points in (history[:1], history[:2]), points
    assert logged.info.status == "RUNNING"  # nothing could tell the server the run ended


def test_a_store_that_fails_after_training_warns_once_per_process(tmp_path, monkeypatch, capsys):
    """Export and verify log into a tracked run's MLflow run; when its store is gone, the first
    failure says so in one line and the process's later calls do not try again (``kerastack run``
    exports and verifies twice: one warning, not four, and no four timeouts)."""
    from core.tracking.mlflow_run import FAILED_ENV, log_files, log_verified

    for name, value in {**FAST_FAIL, FAILED_ENV: ""}.items():  # the failure is kept in the environment:
        monkeypatch.setenv(name, value)  # restored after the test
    uri = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    record = {"tracking": {"to": "mlflow", "uri": uri, "experiment": "kerastack", "run_id": "gone0001"}}
    (tmp_path / "model.tflite").write_bytes(b"x")
    log_verified(tmp_path, record, tmp_path / "model.tflite", {"tflite_accuracy": 0.9}, None)
    log_files(tmp_path, record, [tmp_path / "model.tflite"], "export/tflite")
    log_files(tmp_path, record, [tmp_path / "model.tflite"], "export/tflite")
    said = capsys.readouterr().err.splitlines()
    assert len(said) == 1 and "MLflow tracking failed" in said[0] and uri in said[0], said
    assert "Connection refused" in said[0], said
    assert os.environ[FAILED_ENV].split() == ["gone0001"]  # what an export's TensorFlow child inherits
