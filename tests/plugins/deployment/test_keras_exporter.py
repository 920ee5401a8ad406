"""The ``keras`` exporter: a portable model.keras without training state, and a model.json about it."""

import numpy as np
import pytest
from conftest import read_json, run_python

pytestmark = pytest.mark.slow

# One TensorFlow process trains and exports; the copy is then loaded under JAX (see the last test).
JOB = """
import json, sys
import numpy as np
from core import export, train
from plugins.datasets.digits import load
out = sys.argv[1]
run = train("cnn", "digits", backend="tensorflow", epochs=1, seed=0, out=out, verbose=0,
            hparams={"filters": 8, "dense": 32})
with_optimizer = export(out, "keras", {"include_optimizer": True, "verify": False})
import shutil
shutil.copy(with_optimizer[0], out + "/with_optimizer.keras")
paths = export(out, "keras")  # replaces it: the default is what the tests read
x, _ = load().test
np.save(out + "/x.npy", x[:20])
np.save(out + "/keras_pred.npy", run.model.predict(x[:20], verbose=0))
json.dump({"paths": [str(p) for p in paths], "with_optimizer": [str(p) for p in with_optimizer]},
          open(out + "/job.json", "w"))
"""

LOAD_UNDER_JAX = """
import json, sys
import keras, numpy as np
out = sys.argv[1]
model = keras.saving.load_model(out + "/export/keras/model.keras")
pred = model.predict(np.load(out + "/x.npy"), verbose=0)
json.dump({"backend": keras.backend.backend(), "compiled": bool(model.compiled),
           "diff": float(np.abs(pred - np.load(out + "/keras_pred.npy")).max())},
          open(out + "/jax.json", "w"))
"""


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    run = tmp_path_factory.mktemp("keras-export") / "run"
    run_python(JOB, run, env={"KERAS_BACKEND": "tensorflow"})
    return run, read_json(run / "job.json")


def test_writes_model_sidecar_and_verify_json(exported):
    run, job = exported
    out = run / "export" / "keras"
    assert job["paths"] == [str(out / "model.keras"), str(out / "model.json"), str(out / "verify.json")]
    assert job["with_optimizer"] == [str(out / "model.keras"), str(out / "model.json")]
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "temporary files left behind"


def test_copy_is_smaller_than_the_run_model(exported):
    """No optimizer state: the run's model.keras carries Adam's moments for every weight."""
    run, _ = exported
    copy = (run / "export" / "keras" / "model.keras").stat().st_size
    assert copy < 0.8 * (run / "with_optimizer.keras").stat().st_size
    assert copy < 0.8 * (run / "model.keras").stat().st_size


def test_model_json_describes_the_run(exported):
    run, _ = exported
    meta = read_json(run / "export" / "keras" / "model.json")
    assert meta["format"] == "kerastack-keras/1" and meta["task"] == "classification"
    assert meta["architecture"]["name"] == "cnn" and meta["architecture"]["options"] == {"filters": 8, "dense": 32}
    assert meta["dataset"]["name"] == "digits"
    assert meta["class_names"] == [str(i) for i in range(10)] and meta["num_classes"] == 10
    assert meta["source_run"] == str(run.resolve()) and meta["trained_backend"] == "tensorflow"
    assert meta["versions"]["keras"] and meta["exported_backend"] == "tensorflow"
    assert set(meta["test_metrics"]) >= {"test_accuracy", "test_loss"}
    entry = meta["files"]["model.keras"]
    assert entry["size_bytes"] == (run / "export" / "keras" / "model.keras").stat().st_size
    assert entry["optimizer"] is False and entry["params"] > 1000
    assert entry["inputs"] == [{"name": "image", "shape": [None, 8, 8, 1], "dtype": "float32"}]
    assert entry["outputs"] == [{"name": "probabilities", "shape": [None, 10], "dtype": "float32"}]


def test_reloaded_copy_matches(exported):
    run, _ = exported
    v = read_json(run / "export" / "keras" / "verify.json")["model.keras"]
    assert v["max_abs_diff"] == 0.0 and v["agreement"] == 1.0 and v["accuracy"] == v["keras_accuracy"]
    assert v["samples"] == 270 and v["split"] == "test"


def test_copy_loads_under_another_backend(exported):
    run, _ = exported
    run_python(LOAD_UNDER_JAX, run, env={"KERAS_BACKEND": "jax"})
    result = read_json(run / "jax.json")
    assert result["backend"] == "jax" and result["compiled"] is False
    assert result["diff"] <= 1e-5, result
    assert np.load(run / "x.npy").shape == (20, 8, 8, 1)
