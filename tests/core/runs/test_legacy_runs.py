"""Runs written before the module moves of issue "The house" still load, export, verify and resume.

Their ``run.json`` and ``.keras`` files name ``core.losses``, ``core.schedules`` and
``plugins.architectures._layers.generative`` (see ``tests/fixtures/legacy_runs/README.md``).
"""

import json
import shutil
from pathlib import Path

from conftest import read_json, run_cli, run_python

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "legacy_runs"


def _copy(name, tmp_path):
    run = tmp_path / name
    shutil.copytree(FIXTURES / name, run)
    return run


def test_cnn_torch_loads_exports_and_verifies(tmp_path):
    run = _copy("cnn-torch", tmp_path)
    proc = run_python(
        """
        import sys
        import numpy as np
        from core import load_run
        run = load_run(sys.argv[1])
        x = np.random.default_rng(0).random((16, 8, 8, 1), dtype="float32")
        p = np.asarray(run.model.predict(x, verbose=0))
        print("MODULES", run.record["custom_modules"])
        print("SOFTMAX", p.shape, bool(np.all(p >= 0)), float(np.abs(p.sum(-1) - 1).max()))
        """,
        run,
    )
    assert "MODULES ['core.engine.losses', 'core.engine.schedules']" in proc.stdout
    shape, nonnegative, error = proc.stdout.split("SOFTMAX ", 1)[1].rsplit(" ", 2)
    assert shape == "(16, 10)" and nonnegative == "True" and float(error) < 1e-4, proc.stdout

    exported = run_cli("export", run, "--to", "tflite", "--opt", "quantize=int8")
    assert exported.returncode == 0, exported.stderr
    int8 = run / "export" / "tflite" / "model_int8.tflite"
    assert int8.exists(), exported.stdout
    verified = run_cli("verify", int8, "--run", run, "--json")
    assert verified.returncode == 0, verified.stderr
    result = json.loads(verified.stdout)
    assert 0 <= result["tflite_accuracy"] <= 1 and 0 <= result["agreement"] <= 1, result


def test_interrupted_vae_jax_resumes_and_exports(tmp_path):
    run = _copy("vae-jax-interrupted", tmp_path)
    resumed = run_cli("train", "--resume", run, "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {run} at epoch 2 of 6" in resumed.stdout
    record = read_json(run / "run.json")
    assert record["status"] == "complete" and record["resumed"] == [1]
    history = (run / "history.csv").read_text().splitlines()[1:]
    assert [int(row.split(",")[0]) for row in history] == list(range(1, 7))

    exported = run_cli("export", run, "--to", "tflite")
    assert exported.returncode == 0, exported.stderr
    assert list((run / "export" / "tflite").glob("*.tflite")), exported.stdout
