"""Runs written before modules moved still load, export, verify, sample and resume.

The fixtures' ``run.json`` and ``.keras`` files name ``core.losses``, ``core.schedules`` and
``plugins.architectures._layers.generative`` (see ``tests/fixtures/legacy_runs/README.md``). Runs
of the generative families from before each became a package (issue 24) name
``plugins.architectures._layers.{gan,diffusion,vae}``: those are made here by rewriting the module
paths of fresh runs.
"""

import importlib.util
import json
import shutil
import zipfile
from pathlib import Path

import pytest
from conftest import read_json, run_cli, run_python

from core.runs.run import LEGACY_MODULES

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


# (architecture, hyperparameters, where its classes were, where they are now)
FAMILIES = [
    ("gan", {"latent": 4, "filters": 4}, "plugins.architectures._layers.gan", "plugins.architectures.gan.layers"),
    (
        "diffusion",
        {"filters": 4, "embed_dim": 4, "steps": 10},
        "plugins.architectures._layers.diffusion",
        "plugins.architectures.diffusion.layers",
    ),
    (
        "vae",
        {"latent": 4, "filters": 4, "units": 8},
        "plugins.architectures._layers.vae",
        "plugins.architectures.autoencoder.layers",
    ),
]

TRAIN = """
import json, sys
from pathlib import Path
from core import train
for arch, hparams in json.loads(sys.argv[2]):
    train(arch, "digits", backend="jax", epochs=1, steps_per_epoch=2, hparams=hparams, out=Path(sys.argv[1]) / arch,
          seed=0, verbose=0)
"""

USE = """
import json, sys
from pathlib import Path
from core import export, load_run
from plugins.architectures.diffusion import sample
root = Path(sys.argv[1])
report = {"modules": {a: load_run(root / a).record["custom_modules"] for a in ("gan", "diffusion", "vae")}}
report["gan"] = sample(root / "gan", 4, out=root / "gan.png")[1]
report["diffusion"] = sample(root / "diffusion", 4, out=root / "diffusion.png", steps=2)[1]
report["vae"] = [Path(p).name for p in export(root / "vae", "keras")]
report["vae_verify"] = json.loads((root / "vae" / "export" / "keras" / "verify.json").read_text())["model.keras"]
print("REPORT", json.dumps(report))
"""


def test_every_moved_module_maps_to_modules_that_are_there():
    for old, new in LEGACY_MODULES.items():
        assert importlib.util.find_spec(old) is None, f"{old} is still there: no need to map it"
        assert new and all(importlib.util.find_spec(m) for m in new), (old, new)


def _rewrite_module(run, new, old):
    """Make ``run`` as a run saved before the move: ``old`` for ``new`` in run.json and model.keras."""
    record = read_json(run / "run.json")
    assert record["custom_modules"] == [new], record["custom_modules"]
    record["custom_modules"] = [old]
    (run / "run.json").write_text(json.dumps(record))
    model = run / "model.keras"
    with zipfile.ZipFile(model) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    config = files["config.json"].decode()
    assert f'"module": "{new}"' in config
    files["config.json"] = config.replace(f'"{new}"', f'"{old}"').encode()
    with zipfile.ZipFile(model, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)


@pytest.mark.slow
def test_generative_runs_saved_under_the_old_module_paths_load_sample_and_export(tmp_path):
    run_python(TRAIN, tmp_path, json.dumps([(arch, hparams) for arch, hparams, _, _ in FAMILIES]))
    for arch, _, old, new in FAMILIES:
        _rewrite_module(tmp_path / arch, new, old)
    proc = run_python(USE, tmp_path)
    report = json.loads(proc.stdout.split("REPORT ", 1)[1])
    assert report["modules"] == {arch: [new] for arch, _, _, new in FAMILIES}
    assert report["gan"].startswith("4 images 8x8x1") and report["diffusion"].startswith("4 images 8x8x1"), report
    assert report["vae"] == ["model.keras", "model.json", "verify.json"]
    assert report["vae_verify"]["max_abs_diff"] < 1e-5, report["vae_verify"]
