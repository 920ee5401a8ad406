"""core/backend.py: a JAX or torch process trains, saves and reloads without importing TensorFlow."""

import pytest
from conftest import run_python

CHECK = """
import sys
from core.engine.training import train
from core.runs import load_run

run = train("cnn", "digits", epochs=1, hparams={"filters": 4, "dense": 8}, out=sys.argv[1], seed=0, verbose=0)
again = load_run(sys.argv[1])
assert run.model.count_params() == again.model.count_params()
assert "tensorflow" not in sys.modules, "TensorFlow was imported"
import keras
from keras.src.utils.module_utils import tensorflow
assert tensorflow.available  # other callers still get Keras's answer (the lookup layers need it)
print("ok")
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_jax_and_torch_runs_do_not_import_tensorflow(backend, tmp_path):
    # Keras asks whether TensorFlow is installed to save a model and to seed: that imported all of
    # TensorFlow (4 s of each run) in processes that never use it.
    # A fresh process (not a warm one, tests/warm.py): what it imports is the check.
    check = run_python(CHECK, tmp_path / "run", env={"KERAS_BACKEND": backend}, fresh=True)
    assert check.stdout.strip() == "ok"
