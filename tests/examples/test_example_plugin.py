"""examples/kerastack-example: a third-party package, pip-installed, found through its entry point."""

import importlib.metadata
import json
import subprocess
import sys

import pytest
from conftest import REPO, read_json, run_cli

pytestmark = pytest.mark.slow
PACKAGE = REPO / "examples" / "kerastack-example"


@pytest.fixture(scope="module")
def installed():
    """Install the example into the test environment (editable, no dependencies: they are ours)."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--disable-pip-version-check",
            "-e",
            str(PACKAGE),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert importlib.metadata.version("kerastack-example") == "0.1.0"


def test_listed_with_package_and_version(installed):
    listing = json.loads(run_cli("plugins", "--json").stdout)
    (example,) = [p for p in listing["plugins"] if p["name"] == "example"]
    assert example["origin"] == "package"
    assert (example["package"], example["version"]) == ("kerastack-example", "0.1.0")
    assert sorted(example["hooks"]) == [
        "register_architectures",
        "register_callbacks",
        "register_datasets",
        "register_tasks",
    ]
    assert [t["name"] for t in example["registers"]["task"]] == ["multilabel"]
    assert example["registers"]["dataset"][0]["options"] == {"samples": 1200, "noise": 0.2, "seed": 0}
    assert example["registers"]["architecture"][0]["hyperparameters"] == {"units": 64, "activation": "relu"}


def test_trains_exports_and_verifies(installed, tmp_path):
    run = tmp_path / "moons"
    proc = run_cli(
        "train",
        "--arch",
        "wide_mlp",
        "--data",
        "moons",
        "--epochs",
        "15",
        "--hp",
        "units=32",
        "--callback",
        "epoch_timer",
        "--seed",
        "0",
        "--out",
        run,
        "--quiet",
    )
    assert proc.returncode == 0, proc.stderr
    assert "epoch 15 took" in proc.stdout  # the plugin's callback ran
    metrics = read_json(run / "metrics.json")
    assert metrics["val_accuracy"] >= 0.85, metrics
    record = read_json(run / "run.json")
    assert record["dataset"]["package"] == "kerastack-example" and record["dataset"]["version"] == "0.1.0"
    assert record["architecture"]["options"] == {"units": 32}

    proc = run_cli("export", run, "--to", "tflite", "--opt", "quantize=int8")
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("verify", run / "export/tflite/model_int8.tflite", "--run", run, "--json")
    assert proc.returncode == 0, proc.stderr
    v = json.loads(proc.stdout)
    assert v["agreement"] >= 0.97 and abs(v["tflite_accuracy"] - v["keras_accuracy"]) <= 0.02, v
    assert (run / "export/tflite/labels.txt").read_text().split() == ["upper", "lower"]


def test_an_outside_task_is_trained_exported_verified_and_listed_by_its_own_metric(installed, tmp_path):
    """The package's ``multilabel`` task (kerastack has none): compiled with its loss, judged by its
    scorer after training, in verify and in the export report, listed by its metric, its outputs
    shown as values on the device."""
    run = tmp_path / "tags"
    proc = run_cli("train", "--arch", "wide_mlp", "--data", "tags", "--epochs", "20", "--out", run, "--quiet")
    assert proc.returncode == 0, proc.stderr
    record, metrics = read_json(run / "run.json"), read_json(run / "metrics.json")
    assert record["spec"]["task"] == "multilabel" and record["spec"]["target_shape"] == [5]
    assert record["spec"]["num_classes"] is None
    # Chance is 0.5 per label; the task's scorer and Keras's binary accuracy count the same thing.
    assert metrics["test_label_accuracy"] >= 0.75, metrics
    assert abs(metrics["test_label_accuracy"] - metrics["test_binary_accuracy"]) < 1e-4, metrics
    assert not (run / "confusion.png").exists()  # no class ids: no confusion matrix
    listed = json.loads(run_cli("runs", tmp_path, "--json").stdout)
    assert listed[0]["key_metric"] == "label_accuracy" and listed[0]["test"] == metrics["test_label_accuracy"]

    assert run_cli("export", run, "--to", "tflite", "--opt", "quantize=int8").returncode == 0
    tflite = run / "export/tflite/model_int8.tflite"
    v = json.loads(run_cli("verify", tflite, "--run", run, "--json").stdout)
    assert abs(v["tflite_label_accuracy"] - v["keras_label_accuracy"]) <= 0.02 and v["agreement"] >= 0.97, v
    assert abs(v["keras_label_accuracy"] - metrics["test_label_accuracy"]) < 1e-6, v
    assert "| label accuracy |" in (run / "export/tflite/report.md").read_text()
    meta = subprocess.run([sys.executable, "-m", "tflite", tflite, "--metadata"], capture_output=True, text=True)
    assert '"task": "multilabel"' in meta.stdout and '"output": "values"' in meta.stdout, meta.stderr
