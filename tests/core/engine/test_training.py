"""Training the same architecture under each backend, each in its own process."""

import csv

import pytest
from conftest import read_json, run_python

pytestmark = pytest.mark.slow
BACKENDS = ("tensorflow", "jax", "torch")


@pytest.mark.parametrize("backend", BACKENDS)
def test_cnn_learns_digits(trained, backend):
    run = trained(backend)
    metrics = read_json(run / "metrics.json")
    assert metrics["backend"] == backend and metrics["epochs"] == 4
    assert metrics["val_accuracy"] >= 0.9, metrics
    assert metrics["test_accuracy"] >= 0.9, metrics
    assert {"loss", "accuracy", "val_loss", "test_loss"} <= set(metrics)
    with open(run / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])
    assert float(rows[-1]["val_accuracy"]) == pytest.approx(metrics["val_accuracy"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_run_record_reproduces(trained, backend):
    run = trained(backend)
    record = read_json(run / "run.json")
    assert record["status"] == "complete"
    assert record["architecture"] == {
        "name": "cnn",
        "plugin": "plugins.architectures.cnn",
        "origin": "built-in",
        "options": {},
    }
    assert record["dataset"]["name"] == "digits"
    training = record["training"]
    assert {k: training[k] for k in ("backend", "epochs", "batch_size", "seed", "callbacks", "optimizer")} == {
        "backend": backend,
        "epochs": 4,
        "batch_size": 32,
        "seed": 0,
        "callbacks": [],
        "optimizer": "adam",
    }
    assert record["spec"] == {
        "input_shape": [8, 8, 1],
        "num_classes": 10,
        "task": "classification",
        "class_names": [str(i) for i in range(10)],
        "input_dtype": "float32",
        "vocab_size": None,
        "target_shape": None,
    }
    assert record["versions"]["keras"].startswith("3.") and backend in str(record["versions"])
    job = read_json(run / "job.json")
    assert job["backend"] == backend and job["reload_diff"] <= 1e-6
    assert not list(run.glob(".*")), "temporary files left behind"


def test_jax_and_torch_models_reload_in_tensorflow(trained):
    runs = {b: trained(b) for b in ("jax", "torch")}
    proc = run_python(
        """
        import sys, numpy as np, keras
        from plugins.datasets.digits import load
        assert keras.backend.backend() == "tensorflow"
        x, _ = load().test
        for run in sys.argv[1:]:
            model = keras.saving.load_model(run + "/model.keras")
            diff = np.abs(np.asarray(model.predict(x, verbose=0)) - np.load(run + "/keras_pred.npy")).max()
            print("DIFF", diff)
    """,
        *runs.values(),
        env={"KERAS_BACKEND": "tensorflow"},
    )
    diffs = [float(line.split()[1]) for line in proc.stdout.splitlines() if line.startswith("DIFF")]
    assert len(diffs) == 2 and max(diffs) <= 1e-5, diffs


def test_api_in_jax_process_exports_through_tensorflow_child(trained):
    job = read_json(trained("jax") / "job.json")
    assert job["backend_after"] == "jax"  # the JAX process stayed JAX
    assert job["child_export"][0].endswith("model_dynamic.tflite")
    result = job["child_verify"]
    assert result["agreement"] >= 0.97 and result["split"] == "test" and result["samples"] == 270
    assert abs(result["tflite_accuracy"] - result["keras_accuracy"]) <= 0.02


@pytest.mark.parametrize("backend", BACKENDS)
def test_seeded_runs_are_identical(trained, backend):
    """Two runs with the same seed on the same backend and machine give identical weights."""
    assert read_json(trained(backend) / "job.json")["seeded_identical"] is True


@pytest.mark.parametrize("backend", BACKENDS)
def test_steps_per_execution_trains_the_same_steps(trained, backend):
    job = read_json(trained(backend) / "job.json")
    if backend == "torch":  # Keras runs torch one batch per call
        assert "--steps-per-execution 4: the torch backend runs one batch per call" in job["spe_error"]
    else:
        assert job["spe_diff"] <= 1e-5 and job["spe_recorded"] == 4, job


def test_precision_is_the_models_not_the_process_s(tmp_path):
    """--precision applies to the model trained; afterwards the process's global dtype policy is
    float32 again, so a model exported or built next in the same process is not mixed by accident."""
    proc = run_python(
        """
        import sys
        import keras
        from core import train
        run = train("mlp", "iris", backend="jax", epochs=1, hparams={"units": "8"}, out=sys.argv[1],
                    precision="mixed_bfloat16", verbose=0)
        print("GLOBAL", keras.config.dtype_policy().name)
        print("MODEL", run.model.layers[-1].dtype_policy.name)
        """,
        tmp_path / "run",
        env={"KERAS_BACKEND": "jax"},
    )
    assert "GLOBAL float32" in proc.stdout and "MODEL mixed_bfloat16" in proc.stdout, proc.stdout
