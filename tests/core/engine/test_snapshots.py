"""Checkpoints written off the training thread (core/engine/snapshots.py): the file built from the
host copy is model.save's, on every backend and for the models the plan cannot cache; a run killed
while a background write is pending leaves a whole checkpoint that --resume continues."""

import io
import os
import signal
import subprocess
import time
import zipfile

import h5py
import pytest
from conftest import KERASTACK, read_json, run_cli, run_python

from core.engine.snapshots import BackgroundWriter

# One process per backend: a model trained a little between two snapshots (the second from the
# cached plan), a LoRA model (saves a computed kernel: walked every time) and a model with assets
# (a layer's vocabulary file: serialized whole); each file must load as model.save's does.
SAME_AS_SAVE = """
import sys
from pathlib import Path
import numpy as np
import keras
from core.engine.snapshots import BackgroundWriter, Snapshotter, write_snapshot

out = Path(sys.argv[1])
x, y = np.random.RandomState(0).rand(64, 6).astype("float32"), np.arange(64) % 3

def dense(lora=False):
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(3)])
    if lora:
        model.layers[0].enable_lora(2)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model

@keras.saving.register_keras_serializable("test_snapshots")
class Vocabulary(keras.layers.Layer):  # saves an asset file, as lookup layers do
    def call(self, x):
        return x

    def save_assets(self, dir_path):
        Path(dir_path, "vocabulary.txt").write_text("a b c")

    def load_assets(self, dir_path):
        self.words = Path(dir_path, "vocabulary.txt").read_text().split()

def lookup():
    model = dense()
    model = keras.Sequential([keras.Input((6,)), Vocabulary(), *model.layers])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    return model

def same(a, b):
    if [l.trainable for l in a.layers] != [l.trainable for l in b.layers]:
        return "trainable flags differ"
    vars_a = [keras.ops.convert_to_numpy(v) for v in a.weights + a.optimizer.variables]
    vars_b = [keras.ops.convert_to_numpy(v) for v in b.weights + b.optimizer.variables]
    if not all(p.shape == q.shape for p, q in zip(vars_a, vars_b)):
        return "shapes differ"
    if len(vars_a) == len(vars_b) and all(np.array_equal(p, q, equal_nan=p.dtype.kind == "f") for p, q in zip(vars_a, vars_b)):
        return True  # equal, NaN where NaN (a torch run in the full suite once held NaN in both files)
    diff = max(float(np.nanmax(np.abs(p - q), initial=0)) for p, q in zip(vars_a, vars_b))
    nans = [int(np.isnan(p).sum()) - int(np.isnan(q).sum()) for p, q in zip(vars_a, vars_b) if p.dtype.kind == "f"]
    return f"max diff {diff}, NaN count differences {nans}"

report = {}
for name, model, data in (
    ("dense", dense(), (x, y)),
    ("lora", dense(lora=True), (x, y)),
    ("lookup", lookup(), (x, y)),
    ("refrozen", dense(), (x, y)),
):
    snapshots = Snapshotter(model)
    files = []
    with BackgroundWriter() as writer:
        for epoch in range(2):
            model.fit(*data, batch_size=16, epochs=1, verbose=0)
            snapshot = snapshots.take()
            files.append(out / f"{name}-{epoch}.keras")
            model.save(out / f"{name}-{epoch}-save.keras")
            writer.submit(files[-1].name, lambda delay, s=snapshot, f=files[-1]: write_snapshot(s, f))
            model.fit(*data, batch_size=16, epochs=1, verbose=0)  # trains on while it is written
            if name == "refrozen" and epoch == 0:  # as --fine-tune-after does: new optimizer, layers (un)frozen
                model.layers[0].trainable = False
                model.compile(optimizer=keras.optimizers.SGD(1e-2, momentum=0.9), loss="sparse_categorical_crossentropy")
    checks = [same(keras.saving.load_model(f), keras.saving.load_model(str(f).replace(".keras", "-save.keras"))) for f in files]
    last = keras.saving.load_model(files[1])
    iterations = int(last.optimizer.iterations)
    assert name != "lookup" or last.layers[0].words == ["a", "b", "c"], (getattr(last.layers[0], "words", None), snapshots.with_assets)
    report[name] = (checks, snapshots.plan is not None, snapshots.with_assets, iterations)
print("REPORT", report)
"""


def _burn(seconds):
    """Spend ``seconds`` of this thread's CPU, as building a .keras file does."""
    started = time.thread_time()
    while time.thread_time() - started < seconds:
        pass


def test_writer_keeps_the_latest_job_per_file_within_its_share_of_the_time():
    """Epochs of 10 ms whose file costs 10 ms of CPU: the writer may spend 10 % of the time, so it
    writes about every 10th state, always the latest, in order, and the last one on leaving."""
    written = {"a": [], "b": []}

    def job(key, epoch):
        def write(delay):
            _burn(0.01)
            written[key].append(epoch)

        return write

    started = time.monotonic()
    with BackgroundWriter(share=0.1) as writer:
        for epoch in range(30):
            writer.submit("a", job("a", epoch))
            writer.submit("b", job("b", epoch))
            time.sleep(0.01)  # the next epoch trains; submit never waits
    elapsed = time.monotonic() - started
    for key in "ab":
        assert written[key][-1] == 29 and written[key] == sorted(written[key]), written
    rounds = len(written["a"])
    # a round costs >= 10 ms of CPU (one job: the writer may wake between the two submits), so the
    # next starts >= 100 ms after it began; plus the first round and the flush on leaving
    assert 2 <= rounds <= elapsed / 0.1 + 2 and rounds < 15, (rounds, elapsed, written)
    assert writer.replaced >= 2 * (30 - rounds)


def test_writer_skips_the_rest_of_a_failed_round_and_raises_in_the_caller():
    done = []

    def fail(delay):
        raise OSError("disk full")

    writer = BackgroundWriter()
    writer.submit("checkpoint.keras", fail)
    writer.submit("checkpoint.json", lambda delay: done.append("json"))
    with pytest.raises(OSError, match="disk full"):
        writer.flush()
    assert done == []  # checkpoint.json never names a checkpoint that was not written
    writer.submit("checkpoint.json", lambda delay: done.append("json"))  # the error was reported: go on
    writer.close()
    assert done == ["json"]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch", "tensorflow"])
def test_a_snapshot_writes_what_model_save_writes(tmp_path, backend):
    proc = run_python(SAME_AS_SAVE, tmp_path, env={"KERAS_BACKEND": backend})
    report = eval(proc.stdout.split("REPORT", 1)[1])  # noqa: S307 - our own child's repr
    steps = 3 * 4  # the state after the third epoch of 4 batches, not the fourth's
    assert report["dense"] == ([True, True], True, False, steps), report
    assert report["lora"] == ([True, True], False, False, steps), report
    assert report["lookup"] == ([True, True], False, True, steps), report
    # Recompiled (a new optimizer, 4 steps old) with a layer frozen after the first snapshot: the
    # second is walked anew, not read from the first one's plan (the old optimizer, the old flags).
    assert report["refrozen"] == ([True, True], True, False, 4), report


@pytest.mark.slow
def test_sigkill_while_a_background_write_is_pending_leaves_a_checkpoint_that_resumes(tmp_path):
    """Each background write waits 1 s (the test hook) between its temporary file and the rename:
    the kill lands while a checkpoint is being written, after an earlier one is in place. The writer
    keeps only the latest state and takes turns with the training, so 30 ms epochs outrun it: 30 of
    them leave time for a second write while the training goes on."""
    run = tmp_path / "run"
    args = ["train", "--arch", "mlp", "--data", "digits", "--hp", "units=8", "--epochs", "30", "--seed", "0"]
    args += ["--backend", "jax", "--out", str(run), "--quiet"]
    env = dict(os.environ, KERASTACK_TEST_WRITE_DELAY="1")
    proc = subprocess.Popen([KERASTACK, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    deadline = time.time() + 120
    pending = []
    while proc.poll() is None and time.time() < deadline:
        pending = list(run.glob(".checkpoint.keras.partial-*")) if (run / "checkpoint.json").exists() else []
        if pending:
            break
        time.sleep(0.02)
    assert pending, f"no pending write seen; exit {proc.poll()}: {proc.stderr.read() if proc.poll() else ''}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    epoch = read_json(run / "checkpoint.json")["epoch"]
    assert epoch >= 1 and read_json(run / "run.json")["status"] == "running"

    # The checkpoint in place is the one checkpoint.json names: its optimizer has taken exactly that
    # many epochs of steps (digits: 40 batches of 32 per epoch); --resume below loads it whole.
    with zipfile.ZipFile(run / "checkpoint.keras") as archive:
        weights = h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r")
        assert int(weights["optimizer/vars/0"][()]) == 40 * epoch  # the optimizer's iterations

    resumed = run_cli("train", "--resume", run, "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {run} at epoch {epoch + 1} of 30" in resumed.stdout
    assert not list(run.glob(".*partial-*"))  # the killed writer's temporary file is gone
    history = (run / "history.csv").read_text().splitlines()[1:]
    assert [int(row.split(",")[0]) for row in history] == list(range(1, 31))
    assert read_json(run / "run.json")["status"] == "complete"
