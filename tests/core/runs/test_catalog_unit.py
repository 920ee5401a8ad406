"""core.runs.catalog function by function, on run directories written by hand (tests/fake_runs.py).
No command line, no model loaded; test_catalog.py covers the commands that use these."""

import json
import os
import subprocess
import sys

import pytest
from fake_runs import make_run

from core.errors import KerastackError
from core.runs.catalog import (
    better,
    compare,
    find_runs,
    flatten,
    key_metric,
    list_runs,
    run_names,
    status_of,
    summarize,
)
from core.runs.run import Run, load_run


# -- find_runs ---------------------------------------------------------------------------------------
def test_find_runs_goes_three_levels_deep(tmp_path):
    make_run(tmp_path, "top")
    make_run(tmp_path / "sweep", "lr-0.1")
    make_run(tmp_path / "sweep" / "grid", "deep")  # depth 3: found
    make_run(tmp_path / "sweep" / "grid" / "more", "too-deep")  # depth 4: not searched
    found = find_runs(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["sweep/grid/deep", "sweep/lr-0.1", "top"]


def test_find_runs_skips_hidden_folders_but_not_a_hidden_root(tmp_path):
    make_run(tmp_path / ".trash", "old")
    make_run(tmp_path / "runs" / ".cache", "cached")
    make_run(tmp_path / "runs", "kept")
    assert [p.name for p in find_runs(tmp_path)] == ["kept"]
    assert [p.name for p in find_runs(tmp_path / ".trash")] == ["old"]  # named explicitly: searched


def test_find_runs_does_not_look_inside_a_run(tmp_path):
    run = make_run(tmp_path, "outer")
    make_run(run / "export", "inner")
    assert find_runs(tmp_path) == [run]
    assert find_runs(run) == [run]


def test_find_runs_of_no_directory(tmp_path):
    with pytest.raises(KerastackError, match=r"nope: no such directory$"):
        find_runs(tmp_path / "nope")
    (tmp_path / "file").write_text("")
    with pytest.raises(KerastackError, match=r"file: no such directory$"):
        find_runs(tmp_path / "file")
    assert find_runs(tmp_path) == []


# -- summarize and status_of ----------------------------------------------------------------------------
def test_summarize_a_complete_run(tmp_path):
    path = make_run(tmp_path, "r", backend="jax", epochs=4, hparams={"filters": 8})
    got = summarize(path)
    assert {k: got[k] for k in ("name", "path", "status", "architecture", "dataset", "task", "backend")} == {
        "name": "r",
        "path": str(path),
        "status": "complete",
        "architecture": "cnn",
        "dataset": "digits",
        "task": "classification",
        "backend": "jax",
    }
    assert (got["epochs"], got["planned_epochs"], got["key_metric"]) == (4, 4, "accuracy")
    assert got["val"] == pytest.approx(0.85) and got["test"] == pytest.approx(0.84)
    assert "backend" not in got["metrics"] and "epochs" not in got["metrics"]
    assert got["metrics"]["total_params"] == 1234
    json.dumps(got)


def test_summarize_a_run_still_training_reads_its_last_epoch(tmp_path):
    path = make_run(tmp_path, "r", status="running", epochs=2, task="regression")
    got = summarize(path)
    assert (got["status"], got["epochs"], got["key_metric"]) == ("running", 2, "mae")
    assert got["val"] == pytest.approx(0.6) and got["test"] is None
    assert "epoch" not in got["metrics"] and got["metrics"]["loss"] == pytest.approx(0.5)


def test_summarize_a_run_without_history_or_metrics(tmp_path):
    path = make_run(tmp_path, "r", status="running")
    (path / "history.csv").unlink()
    got = summarize(path)
    assert (got["epochs"], got["key_metric"], got["val"], got["test"], got["metrics"]) == (None, None, None, None, {})


def test_summarize_takes_the_backend_from_metrics_when_the_record_has_none(tmp_path):
    path = make_run(tmp_path, "r", backend="torch")
    record = json.loads((path / "run.json").read_text())
    del record["training"]["backend"]
    (path / "run.json").write_text(json.dumps(record))
    assert summarize(path)["backend"] == "torch"


@pytest.mark.parametrize(
    ("setup", "error"),
    [
        (lambda p: None, "no such run directory"),
        (lambda p: p.mkdir(), "no such run record"),
        (lambda p: (p.mkdir(), (p / "run.json").write_text("[1,")), "unreadable run record"),
    ],
)
def test_summarize_never_raises_for_one_bad_run(tmp_path, setup, error):
    path = tmp_path / "bad"
    setup(path)
    got = summarize(path)
    assert (got["name"], got["path"], got["status"]) == ("bad", str(path), "unreadable")
    assert error in got["error"]


@pytest.mark.parametrize(
    ("status", "model", "expected"),
    [
        ("complete", True, "complete"),
        ("complete", False, "no model"),
        ("running", False, "running"),
        ("running", True, "running"),
        (None, True, "complete"),  # older runs recorded no status
        (None, False, "unknown"),
    ],
)
def test_status_of(tmp_path, status, model, expected):
    if model:
        (tmp_path / "model.keras").write_bytes(b"x")
    record = {} if status is None else {"status": status}
    assert status_of(Run(tmp_path, record)) == expected


def test_a_running_run_whose_lock_holder_is_gone_is_interrupted(tmp_path):
    """A writer killed (SIGKILL, or a launcher's kill) leaves "running" and a lock naming a dead
    pid: the run is listed as interrupted (resumable), not as running forever."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (tmp_path / ".lock").write_text(str(gone.pid))
    assert status_of(Run(tmp_path, {"status": "running"})) == "interrupted"
    (tmp_path / ".lock").write_text(str(os.getpid()))  # a live writer: still running
    assert status_of(Run(tmp_path, {"status": "running"})) == "running"


# -- metrics --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("metrics", "key"),
    [
        ({"accuracy": 1, "mae": 2, "loss": 3}, "accuracy"),  # preference order, not dict order
        ({"test_accuracy": 1, "val_mae": 2}, "accuracy"),
        ({"val_mse": 1, "val_loss": 2}, "mse"),
        ({"loss": 1, "val_loss": 2}, "loss"),
        ({"g_loss": 1, "seconds": 2}, None),
        ({}, None),
    ],
)
def test_key_metric(metrics, key):
    assert key_metric(metrics) == key


@pytest.mark.parametrize(
    ("name", "way"),
    [
        ("loss", "lower"),
        ("val_mse", "lower"),
        ("test_rmse", "lower"),
        ("mean_absolute_error", "lower"),
        ("d_loss", "lower"),
        ("seconds", "lower"),
        ("val_auc", "higher"),
        ("test_f1", "higher"),
        ("precision", "higher"),
        ("val_recall", "higher"),
        ("agreement", "higher"),
        ("total_params", None),
        ("val_psnr", None),
    ],
)
def test_better(name, way):
    assert better(name) == way


def test_flatten():
    record = {
        "training": {"epochs": 3, "callbacks": [], "schedule": {"name": "cosine", "warmup": {"steps": 10}}},
        "plugins": ["a.py", "b"],
        "spec": {"input_shape": (28, 28, 1), "class_names": None, "extra": {}},
        "seed": 0,
    }
    assert flatten(record) == {
        "training.epochs": 3,
        "training.callbacks": "[]",
        "training.schedule.name": "cosine",
        "training.schedule.warmup.steps": 10,
        "plugins": "a.py,b",
        "spec.input_shape": "28,28,1",
        "spec.class_names": None,
        "spec.extra": "{}",
        "seed": 0,
    }
    assert flatten({"a": 1}, prefix="run.") == {"run.a": 1}
    assert flatten({}) == {}


# -- compare ----------------------------------------------------------------------------------------------
def test_compare_lines_up_settings_and_metrics(tmp_path):
    a = make_run(tmp_path, "a", created="2026-11-20T00:00:00+0000", hparams={"units": 8})
    b = make_run(tmp_path, "b", created="2026-11-21T00:00:00+0000", status="running", hparams={"units": 16})
    got = compare([a, b])
    assert (got["runs"], got["paths"], got["status"]) == (["a", "b"], [str(a), str(b)], ["complete", "running"])
    assert got["settings"] == {"architecture.options.units": [8, 16]}  # created and status left out
    everything = compare([a, b], everything=True)
    assert "training.batch_size" in everything["settings"] and "created" not in everything["settings"]
    assert "status" not in everything["settings"]
    metrics = list(got["metrics"])
    assert metrics[-3:] == ["seconds", "trainable_params", "total_params"]
    assert metrics[:3] == ["accuracy", "val_accuracy", "test_accuracy"]
    assert "backend" not in metrics and "epochs" not in metrics
    assert got["metrics"]["accuracy"] == [pytest.approx(0.8), None]  # b has no metrics.json yet


def test_compare_names_runs_by_path_when_names_clash(tmp_path):
    a, b = make_run(tmp_path / "x", "run"), make_run(tmp_path / "y", "run")
    assert compare([a, b])["runs"] == [str(a), str(b)]
    assert run_names([load_run(a), load_run(b)]) == [str(a), str(b)]
    assert run_names([load_run(a)]) == ["run"]


def test_compare_of_a_missing_run(tmp_path):
    a = make_run(tmp_path, "a")
    with pytest.raises(KerastackError, match="nope: no such run directory"):
        compare([a, tmp_path / "nope"])


# -- list_runs ordering ----------------------------------------------------------------------------------
def test_list_runs_without_a_creation_time_sorts_by_record_time(tmp_path):
    old = make_run(tmp_path, "old", created=None)
    new = make_run(tmp_path, "new", created="not a date")
    os.utime(old / "run.json", (1_000_000, 1_000_000))
    os.utime(new / "run.json", (2_000_000, 2_000_000))
    make_run(tmp_path, "dated", created="2026-11-21T10:00:00+0000")
    assert [r["name"] for r in list_runs(tmp_path)] == ["dated", "new", "old"]


def test_tracked_runs_show_their_mlflow_run_id_and_mlflows_copies_are_no_runs(tmp_path):
    a, b = make_run(tmp_path, "a"), make_run(tmp_path, "b")
    for run, run_id in ((a, "0123abcd"), (b, "4567ef01")):
        record = json.loads((run / "run.json").read_text())
        record["tracking"] = {"to": "mlflow", "uri": "sqlite:///x.db", "experiment": "kerastack", "run_id": run_id}
        (run / "run.json").write_text(json.dumps(record))
    make_run(tmp_path / "mlartifacts" / "0123abcd", "artifacts")  # MLflow's copy of a's run.json
    assert [p.name for p in find_runs(tmp_path)] == ["a", "b"]
    assert summarize(a)["mlflow_run_id"] == "0123abcd"
    assert summarize(make_run(tmp_path, "untracked"))["mlflow_run_id"] is None
    assert compare([a, b])["settings"] == {}  # the run ids differ by nature, as created does
