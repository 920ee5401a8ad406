"""``kerastack runs`` and ``kerastack compare``, and the reading code they share (core.runs.catalog)."""

import json

import pytest
from conftest import one_line_error, run_cli, run_python
from fake_runs import add_tflite_export, make_run

from core.runs.catalog import better, compare, find_runs, flatten, key_metric, list_runs


def _three_runs(root):
    make_run(root, "old-cnn", created="2026-11-20T09:00:00+0000", hparams={"filters": 16})
    make_run(root, "new-cnn", created="2026-11-21T09:00:00+0000", backend="jax", hparams={"filters": 32})
    make_run(root, "mid-mlp", arch="mlp", data="tabular", task="regression", created="2026-11-20T12:00:00+0000")


def test_list_runs_newest_first_with_key_metrics(tmp_path):
    _three_runs(tmp_path)
    runs = list_runs(tmp_path)
    assert [r["name"] for r in runs] == ["new-cnn", "mid-mlp", "old-cnn"]
    new, mid = runs[0], runs[1]
    assert (new["architecture"], new["dataset"], new["backend"], new["epochs"], new["status"]) == (
        "cnn",
        "digits",
        "jax",
        3,
        "complete",
    )
    assert (new["key_metric"], new["val"], new["test"]) == ("accuracy", 0.75, 0.74)
    assert mid["key_metric"] == "mae" and mid["val"] == pytest.approx(0.4) and "backend" not in mid["metrics"]


def test_find_runs_walks_sweeps_but_not_into_runs(tmp_path):
    make_run(tmp_path / "sweep" / "lr", "a")
    run = make_run(tmp_path, "b")
    add_tflite_export(run)
    (run / "export" / "tflite" / "run.json").write_text("{}")  # inside a run: not a run
    (tmp_path / ".hidden").mkdir()
    make_run(tmp_path / ".hidden", "c")
    assert sorted(p.name for p in find_runs(tmp_path)) == ["a", "b"]
    assert find_runs(run) == [run]  # a run directory lists itself


def test_broken_and_unfinished_runs_are_listed(tmp_path):
    make_run(tmp_path, "crashed", status="running", epochs=2)
    (tmp_path / "torn").mkdir()
    (tmp_path / "torn" / "run.json").write_text("{not json")
    by_name = {r["name"]: r for r in list_runs(tmp_path)}
    crashed = by_name["crashed"]
    assert (crashed["status"], crashed["epochs"], crashed["planned_epochs"]) == ("running", 2, 2)
    assert crashed["val"] == pytest.approx(0.65) and crashed["test"] is None  # from the last epoch
    assert by_name["torn"]["status"] == "unreadable" and "unreadable run record" in by_name["torn"]["error"]


def test_runs_command_table_and_json(tmp_path):
    _three_runs(tmp_path)
    make_run(tmp_path, "crashed", status="running", epochs=2, created="2026-11-19T00:00:00+0000")
    proc = run_cli("runs", tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = [line.split() for line in proc.stdout.splitlines()]
    assert lines[0] == ["run", "arch", "data", "backend", "epochs", "metric", "val", "test", "status"]
    rows = [line for line in lines[2:] if line]
    assert rows[0] == ["new-cnn", "cnn", "digits", "jax", "3", "accuracy", "0.7500", "0.7400", "complete"]
    assert rows[1][:6] == ["mid-mlp", "mlp", "tabular", "tensorflow", "3", "mae"]
    assert rows[3] == ["crashed", "cnn", "digits", "tensorflow", "2/2", "accuracy", "0.6500", "-", "running"]
    listed = json.loads(run_cli("runs", tmp_path, "--json").stdout)
    assert [r["name"] for r in listed] == ["new-cnn", "mid-mlp", "old-cnn", "crashed"]


def test_runs_command_empty_and_missing(tmp_path):
    proc = run_cli("runs", tmp_path)
    assert proc.returncode == 0 and proc.stdout.startswith(f"no runs under {tmp_path}")
    assert json.loads(run_cli("runs", tmp_path, "--json").stdout) == []
    line = one_line_error(run_cli("runs", tmp_path / "nope"), 1)
    assert "nope: no such directory" in line
    proc = run_cli("runs", cwd=tmp_path)  # default: ./runs
    assert "runs: no such directory" in proc.stderr


def test_compare_settings_that_differ_and_metrics(tmp_path):
    _three_runs(tmp_path)
    result = compare([tmp_path / "old-cnn", tmp_path / "new-cnn"])
    assert result["runs"] == ["old-cnn", "new-cnn"]
    assert result["settings"] == {"architecture.options.filters": [16, 32], "training.backend": ["tensorflow", "jax"]}
    assert list(result["metrics"])[:6] == ["accuracy", "val_accuracy", "test_accuracy", "loss", "val_loss", "test_loss"]
    everything = compare([tmp_path / "old-cnn", tmp_path / "new-cnn"], everything=True)
    assert "training.batch_size" in everything["settings"]
    # different tasks: the union of metrics, missing ones as None
    mixed = compare([tmp_path / "old-cnn", tmp_path / "mid-mlp"])
    assert mixed["metrics"]["val_mae"] == [None, pytest.approx(0.4)]
    assert mixed["settings"]["spec.task"] == ["classification", "regression"]


def test_compare_command(tmp_path):
    _three_runs(tmp_path)
    proc = run_cli("compare", tmp_path / "old-cnn", tmp_path / "new-cnn")
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[0]: line.split()[1:] for line in proc.stdout.splitlines() if line.strip()}
    assert rows["training.backend"] == ["tensorflow", "jax"]
    assert rows["architecture.options.filters"] == ["16", "32"]
    assert rows["val_accuracy"] == ["0.7500", "0.7500"] and rows["total_params"] == ["1,234", "1,234"]
    assert "training.batch_size" not in rows
    data = json.loads(run_cli("compare", tmp_path / "old-cnn", tmp_path / "new-cnn", "--json").stdout)
    assert data["settings"]["training.backend"] == ["tensorflow", "jax"]
    line = one_line_error(run_cli("compare", tmp_path / "old-cnn"), 2)
    assert "compare needs at least two run directories, got 1" in line
    line = one_line_error(run_cli("compare", tmp_path / "old-cnn", tmp_path / "nope"), 1)
    assert "nope: no such run directory" in line


def test_runlist_helpers():
    assert key_metric({"val_accuracy": 1, "val_loss": 2}) == "accuracy"
    assert key_metric({"loss": 1, "test_mae": 2}) == "mae"
    assert key_metric({"d_loss_gen": 1}) is None
    assert [better(k) for k in ("val_loss", "test_accuracy", "mae", "seconds", "total_params")] == [
        "lower",
        "higher",
        "lower",
        "lower",
        None,
    ]
    assert flatten({"a": {"b": 1, "c": [1, 2], "d": {}}, "e": None}) == {"a.b": 1, "a.c": "1,2", "a.d": "{}", "e": None}


def test_command_modules_import_nothing_heavy():
    """Importing the commands and asking for their help loads no framework, no matplotlib, no rich."""
    proc = run_python("""
        import sys
        import click
        from core.cli import compare_cmd, info_cmd, new_cmd, report_cmd, runs_cmd
        for module in (compare_cmd, info_cmd, new_cmd, report_cmd, runs_cmd):
            try:
                module.command.main(["--help"], prog_name="kerastack")
            except SystemExit as exit:
                assert exit.code == 0
        heavy = ("keras", "tensorflow", "jax", "torch", "matplotlib", "rich")
        print("HEAVY", sorted(m for m in heavy if m in sys.modules))
    """)
    assert "HEAVY []" in proc.stdout
    assert proc.stdout.count("Example:") == 5
