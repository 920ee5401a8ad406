"""A .keras file whose optimizer state does not fit its model (here: a layer frozen after the
optimizer was built, so Keras would skip the state with a warning) fails to load in one line naming
the file, instead of loading with a fresh optimizer; with a run's ``--freeze`` that still does not
explain it, the variable-by-variable check says how many variables differ. The one fallback (a
finished run's model loads without its optimizer, with a note) is for runs whose frozen layers
cannot be told (--init-from from before run.json listed them)."""

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
# The one case that cannot be restored: --init-from in a run.json from before the initialized layers
# were recorded. Resuming refuses it; the finished run's model loads without its optimizer, with a note.
import json, os, shutil
from core.runs import load_run
old = {"init_from": "/somewhere/else", "freeze": "backbone", "lora_rank": None}
try:
    load_model(path, transfer=old, epoch=1)
except KerastackError as exc:
    print("OLD_RESUME", exc)
run = sys.argv[1] + "/old-run"
os.makedirs(run)
shutil.copyfile(path, run + "/model.keras")
json.dump({"status": "complete", "transfer": old}, open(run + "/run.json", "w"))
model = load_run(run).model
print("OLD_MODEL", getattr(model, "optimizer", None) is None, model.predict(np.ones((1, 4)), verbose=0).shape)
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
    (old_resume,) = [line for line in proc.stdout.splitlines() if line.startswith("OLD_RESUME")]
    assert old_resume.startswith(f"OLD_RESUME {path}: its optimizer state does not load, and the frozen layers")
    assert "does not list the layers initialized from --init-from" in old_resume
    assert "OLD_MODEL True (1, 2)" in proc.stdout, proc.stdout
    (note,) = [line for line in proc.stderr.splitlines() if line.startswith("kerastack: note:")]
    assert note.startswith(f"kerastack: note: {tmp_path}/old-run/model.keras: its optimizer state does not load")
    assert note.endswith("(a run written before they were recorded); loaded without it"), note
