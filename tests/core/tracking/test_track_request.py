"""``--track`` and ``[track]`` checked before anything runs: an unknown tracker or key, a missing
mlflow, each a one-line usage error; what a valid request records in run.json."""

import os

import pytest
from conftest import run_cli

from core.engine.config import load_config
from core.errors import UsageError
from core.tracking.request import default_uri, tracking_request

COMMON = ["--arch", "mlp", "--data", "iris", "--seed", "0", "--quiet"]


def test_without_mlflow_track_says_how_to_install_it(tmp_path):
    # mlflow hidden from the interpreter, as when the extra is not installed.
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(
        "import sys\n"
        "class Hide:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'mlflow':\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, Hide())\n"
    )
    env = {"PYTHONPATH": os.pathsep.join([str(hide), os.environ.get("PYTHONPATH", "")])}
    run = tmp_path / "runs" / "r"
    proc = run_cli("train", *COMMON, "--epochs", "1", "--track", "mlflow", "--out", run, env=env)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    assert "pip install 'kerastack[track]'" in proc.stderr
    assert not run.exists()

    bad = run_cli("train", *COMMON, "--epochs", "1", "--track", "mlfow", "--out", run)
    assert bad.returncode == 2 and "did you mean 'mlflow'" in bad.stderr, bad.stderr


def test_track_settings_are_checked_before_anything_runs(tmp_path):
    assert tracking_request(None, tmp_path / "runs" / "r") is None and tracking_request("none", tmp_path) is None
    entry = tracking_request({"to": "mlflow", "experiment": "e"}, tmp_path / "runs" / "r")
    assert entry["experiment"] == "e" and entry["run_id"] is None
    assert default_uri(tmp_path / "runs" / "r") == f"sqlite:///{tmp_path.resolve() / 'runs' / 'mlflow.db'}"
    with pytest.raises(UsageError, match=r"\[track\] 'experment' \(did you mean 'experiment'\?\)"):
        tracking_request({"to": "mlflow", "experment": "e"}, tmp_path)
    config = tmp_path / "run.toml"
    config.write_text('arch = "mlp"\ndata = "iris"\n[track]\nto = "mlflow"\nexperimnt = "x"\n')
    with pytest.raises(UsageError, match=r"track\.'experimnt' \(did you mean 'experiment'\?\)"):
        load_config(config)
    # A tracked run's run.json, used as a configuration, tracks the new run in the same experiment.
    record = tmp_path / "run.json"
    record.write_text(
        '{"architecture": {"name": "mlp"}, "dataset": {"name": "iris"}, "training": {"backend": "jax", "seed": 0},'
        ' "tracking": {"to": "mlflow", "uri": "sqlite:///x.db", "experiment": "e", "run_id": "abc"}}'
    )
    assert load_config(record)["track"] == {"to": "mlflow", "experiment": "e"}
