"""``kerastack verify``: a file is checked against its own run, and what was measured is printed
before anything is written (issue "sharp edges": verify damaging another run, a read-only run)."""

import json

import pytest
from conftest import one_line_error, read_json, run_cli


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Runs a and b (mlp on iris, two seeds); a exported to int8."""
    root = tmp_path_factory.mktemp("verify")
    for name, data in (("a", "iris"), ("b", "iris")):
        proc = run_cli(
            "train",
            "--arch",
            "mlp",
            "--data",
            data,
            "--hp",
            "units=8",
            "--epochs",
            "2",
            "--seed",
            "1" if name == "a" else "2",
            "--out",
            root / name,
            "--quiet",
        )
        assert proc.returncode == 0, proc.stderr
    proc = run_cli("export", root / "a", "--to", "tflite", "--opt", "quantize=int8", "--no-report")
    assert proc.returncode == 0, proc.stderr
    return root


def test_verify_against_another_run_is_refused_and_damages_nothing(two_runs):
    model = two_runs / "a/export/tflite/model_int8.tflite"
    record = model.parent / "verify.json"
    assert run_cli("verify", model, "--run", two_runs / "a").returncode == 0
    before = record.read_bytes()
    assert json.loads(before)["model_int8.tflite"]["samples"] > 0

    line = one_line_error(run_cli("verify", model, "--run", two_runs / "b"), 2)
    assert "exported from run" in line and str(two_runs / "a") in line and "--other-run" in line

    proc = run_cli("verify", model, "--run", two_runs / "b", "--other-run", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["samples"] > 0
    assert record.read_bytes() == before  # run a's record still speaks of run a
    assert not (two_runs / "b/export").exists()


def test_results_are_printed_before_a_failed_write(two_runs):
    """verify.json cannot be written (here: a folder stands in its place, which fails for root too):
    the numbers are printed, then one line says they were not recorded, exit 1."""
    model = two_runs / "a/export/tflite/model_int8.tflite"
    record = model.parent / "verify.json"
    saved = record.read_bytes() if record.exists() else None
    record.unlink(missing_ok=True)
    record.mkdir()
    try:
        proc = run_cli("verify", model, "--run", two_runs / "a")
        assert "model_int8.tflite" in proc.stdout and "agreement" in proc.stdout, proc.stdout
        line = one_line_error(proc, 1)
        assert "not recorded" in line and "verify.json" in line
    finally:
        record.rmdir()
        if saved is not None:
            record.write_bytes(saved)
    assert read_json(two_runs / "a/run.json")["status"] == "complete"
