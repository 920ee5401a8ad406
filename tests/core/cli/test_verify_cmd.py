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


# A model whose outputs are the same for every input (issue 23: a frozen random backbone gave features of
# 1e-10; agreement 1.0 passed verify without a word): run a with its output layer's kernel zeroed.
CONSTANT = """
import shutil, sys
import keras
src, out = sys.argv[1], sys.argv[2]
shutil.copytree(src, out, ignore=shutil.ignore_patterns("export"))
model = keras.saving.load_model(f"{out}/model.keras")
head = model.layers[-1]
head.kernel.assign(keras.ops.zeros(head.kernel.shape))
model.save(f"{out}/model.keras")
"""


def test_agreement_on_constant_outputs_is_said_to_mean_nothing(two_runs):
    from conftest import run_python

    constant = two_runs / "constant"
    run_python(CONSTANT, two_runs / "a", constant, env={"KERAS_BACKEND": "tensorflow"})
    proc = run_cli("export", constant, "--to", "tflite", "--no-report")
    assert proc.returncode == 0, proc.stderr
    model = constant / "export/tflite/model_float32.tflite"
    proc = run_cli("verify", model, "--run", constant)
    assert proc.returncode == 0, proc.stderr
    row, warning = proc.stdout.strip().splitlines()
    assert "agreement 1.0000" in row
    assert warning.startswith("warning: Keras's outputs are the same for every sample: agreement means nothing")
    result = json.loads(run_cli("verify", model, "--run", constant, "--json").stdout)
    assert result["keras_outputs_constant"] is True and result["agreement"] == 1.0
    assert result["warnings"] == [warning.removeprefix("warning: ")]


def test_the_terminal_gets_the_worst_layers_and_where_the_rest_are(tmp_path):
    """MobileNetV3Small's table was 102 rows of 179 columns: 15 rows, names cut, the full table named."""
    from core.cli.verify_cmd import TERMINAL_LAYERS, TERMINAL_WIDTH, format_layers

    fused = ["batch_normalization_with_a_long_name", "conv2d_with_a_long_name"]
    rows = [
        {
            "layer": f"layer_{i}",
            "fused": fused,
            "snr_db": 5.0 + i,
            "worst_channel": 0,
            "rel_rmse": 0.1,
            "cosine": 0.99,
            "flagged": i < 20,
            "kind": "local",
        }
        for i in range(40)
    ]
    (tmp_path / "report.md").write_text("# report\n")
    (tmp_path / "model.json").write_text("{}")
    text = format_layers({"layer_errors": rows}, where=tmp_path)
    lines = text.splitlines()
    assert len(lines) == 1 + TERMINAL_LAYERS + 2  # the header, the rows, the kind, then where the rest are
    assert lines[1].split()[:2] == ["1", "layer_0"] and lines[TERMINAL_LAYERS].split()[:2] == ["15", "layer_14"]
    assert max(len(line) for line in lines[:-2]) <= 120 and "…" in lines[1]
    assert len(lines[1].split("  ")[1].strip()) == TERMINAL_WIDTH
    assert lines[-1] == (
        f"... 25 more layers (5 flagged), better than these: the full table is in {tmp_path / 'report.md'} and "
        f"{tmp_path / 'model.json'} (or --json)"
    )
    assert format_layers({"layer_errors": rows[:3]}).count("\n") == 1 + 3 + 1  # short tables: whole
