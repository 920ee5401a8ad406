"""A .keras file whose optimizer state does not fit its model (here: a layer frozen after the
optimizer was built, so Keras would skip the state with a warning) fails to load in one line naming
the file, instead of loading with a fresh optimizer; with a run's ``--freeze`` that still does not
explain it, the variable-by-variable check says how many variables differ."""

from conftest import run_python

JOB = """
import sys
import numpy as np
import keras
from core import KerastackError
from core.runs import load_model
path = sys.argv[1] + "/damaged.keras"
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(2)])
model.compile(optimizer="adam", loss="mse")
model.fit(np.ones((8, 4)), np.ones((8, 2)), epochs=1, verbose=0)
model.layers[0].trainable = False  # its optimizer keeps the moments of 4 variables, the config says 2
model.save(path)
for transfer in (None, {"freeze": "none", "lora_rank": None}, {"freeze": "backbone", "lora_rank": None}):
    try:
        load_model(path, transfer=transfer)
        print("LOADED")
    except KerastackError as exc:
        print("ERROR", exc)
print("COMPILE=FALSE", type(load_model(path, compile=False)).__name__)
"""


def test_an_optimizer_state_that_does_not_fit_is_an_error_not_a_fresh_optimizer(tmp_path):
    proc = run_python(JOB, tmp_path, env={"KERAS_BACKEND": "jax"})
    lines = [line for line in proc.stdout.splitlines() if line.startswith(("ERROR", "LOADED", "COMPILE"))]
    assert len(lines) == 4 and "LOADED" not in proc.stdout, proc.stdout
    path = str(tmp_path / "damaged.keras")
    for line in lines[:2]:  # no transfer, or one that changes no trainable flag: Keras's own reason
        assert line.startswith(f"ERROR {path}: its optimizer state does not load (does not fit the model): ")
        assert "Skipping variable loading for optimizer" in line
    # --freeze backbone freezes the first Dense again: the saved state (iterations, learning rate, 2 moments each) is for 4 variables, not 2.
    assert lines[2] == (
        f"ERROR {path}: its optimizer state does not fit the model: 10 optimizer variables saved, "
        "6 for the model's 2 trainable variables"
    ), lines[2]
    assert lines[3] == "COMPILE=FALSE Sequential"  # a model only run loads without the optimizer
