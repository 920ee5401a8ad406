"""Schedules, early stopping, divergence, augmentation, precision, checkpoints and resume."""

import json
import os
import signal
import subprocess
import time

import pytest
from conftest import KERASTACK, one_line_error, read_json, run_cli, run_python

pytestmark = pytest.mark.slow

SCHEDULES = """
import json, sys
import numpy as np
from core.engine.compiling import learning_rate
from core.engine.options import make_options
import keras
out = {}
for name, extra in (("cosine", {"warmup": 0.1}), ("constant", {"warmup": 10}), ("one-cycle", {})):
    schedule = learning_rate(keras, make_options({"schedule": name, "learning_rate": 0.01, **extra}), 100)
    out[name] = [float(keras.ops.convert_to_numpy(schedule(s))) for s in (0, 5, 10, 30, 60, 99)]
print(json.dumps(out))
"""


def test_schedules_have_the_expected_shape():
    proc = run_python(SCHEDULES, env={"KERAS_BACKEND": "jax"})
    lr = json.loads(proc.stdout.strip().splitlines()[-1])
    cosine, constant, cycle = lr["cosine"], lr["constant"], lr["one-cycle"]
    assert cosine[0] == 0 and cosine[1] == pytest.approx(0.005) and cosine[2] == pytest.approx(0.01)
    assert cosine[2] > cosine[3] > cosine[4] > cosine[5] >= 0 and cosine[5] < 1e-4
    assert constant[0] == 0 and constant[1] == pytest.approx(0.005) and constant[2:] == pytest.approx([0.01] * 4)
    assert cycle[0] == pytest.approx(0.01 / 25) and cycle[3] == pytest.approx(0.01, rel=1e-3)
    assert cycle[3] > cycle[4] > cycle[5] and cycle[5] < 0.0005


JOB = """
import json, sys
import numpy as np
from core import train
out = sys.argv[1]
report = {}
stopped = train("mlp", "digits", epochs=6, learning_rate=1e-9, optimizer="sgd", early_stopping=1,
                monitor="val_accuracy", seed=0, out=out + "/stopped", verbose=0)
report["stopped_epochs"] = stopped.metrics["epochs"]
report["stopped_files"] = sorted(p.name for p in stopped.path.iterdir())
# A monitor of its own: best.keras follows it; a tracker outside the compiled metrics (the VAE's
# val_kl_loss) stops early too (Keras could not tell its direction: "mode" is given).
best = train("mlp", "digits", epochs=1, steps_per_epoch=2, monitor="val_accuracy", seed=0, out=out + "/best",
             verbose=0)
report["best_files"] = sorted(p.name for p in best.path.iterdir())
vae = train("vae", "digits", hparams={"latent": 4, "filters": 4}, epochs=2, steps_per_epoch=2, early_stopping=1,
            monitor="val_kl_loss", seed=0, out=out + "/vae", verbose=0)
report["vae_files"] = sorted(p.name for p in vae.path.iterdir())
aug = train("cnn", "digits", epochs=2, augment=("rotate", "zoom"), seed=0, out=out + "/aug", verbose=0)
report["aug_accuracy"] = aug.metrics["val_accuracy"]
report["aug_layers"] = sorted({type(l).__name__ for l in aug.model._flatten_layers()})
mixed = train("mlp", "digits", epochs=2, precision="mixed_bfloat16", seed=0, out=out + "/mixed", verbose=0)
report["mixed"] = [mixed.metrics["val_accuracy"], mixed.model.layers[1].dtype_policy.name]
json.dump(report, open(out + "/report.json", "w"))
"""


def test_early_stopping_augmentation_precision(tmp_path):
    run_python(JOB, tmp_path, env={"KERAS_BACKEND": "tensorflow"})
    r = read_json(tmp_path / "report.json")
    assert r["stopped_epochs"] == 2, r  # no improvement after the first epoch, patience 1
    assert "best.keras" in r["stopped_files"] and "checkpoint.keras" not in r["stopped_files"]
    assert "best.keras" in r["best_files"] and "best.keras" in r["vae_files"], r
    assert r["aug_accuracy"] >= 0.6, r
    assert not [name for name in r["aug_layers"] if name.startswith("Random")], r["aug_layers"]
    assert r["mixed"][0] >= 0.6 and r["mixed"][1] == "mixed_bfloat16", r


def test_divergence_is_one_clear_line(tmp_path):
    proc = run_cli(
        "train",
        "--arch",
        "mlp",
        "--data",
        "digits",
        "--epochs",
        "3",
        "--optimizer",
        "sgd",
        "--learning-rate",
        "1e12",
        "--out",
        tmp_path / "nan",
        "--quiet",
    )
    line = one_line_error(proc, 1)
    assert "training diverged: the loss became nan" in line and "--learning-rate" in line


def test_sigkill_then_resume_continues_from_the_last_checkpoint(tmp_path):
    """Kill training hard mid-run; --resume continues from the last checkpoint with a continuous history.
    30 epochs of ~40 ms: the background writer keeps only the latest state and takes turns with the
    training, so with 8 such epochs the checkpoint could jump from epoch 1 or 2 to the last one,
    leaving no mid-run checkpoint to kill at."""
    EPOCHS = 30  # noqa: N806
    run = tmp_path / "killed"
    args = [
        "train",
        "--arch",
        "mlp",
        "--data",
        "digits",
        "--epochs",
        str(EPOCHS),
        "--schedule",
        "cosine",
        "--seed",
        "3",
        "--out",
        str(run),
        "--quiet",
    ]
    proc = subprocess.Popen([KERASTACK, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline:
        state = run / "checkpoint.json"
        if state.exists() and read_json(state)["epoch"] >= 3:
            break
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = read_json(run / "checkpoint.json")["epoch"]
    assert 3 <= killed_at < EPOCHS
    assert read_json(run / "run.json")["status"] == "running"

    resumed = run_cli("train", "--resume", run, "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {run} at epoch {killed_at + 1} of {EPOCHS}" in resumed.stdout
    assert "taking over" in resumed.stdout  # the dead process's lock
    history = (run / "history.csv").read_text().splitlines()[1:]
    assert [int(row.split(",")[0]) for row in history] == list(range(1, EPOCHS + 1))
    assert read_json(run / "run.json")["status"] == "complete"
    assert read_json(run / "run.json")["resumed"] == [killed_at]

    # The schedule resumed where it was: the same step count as an uninterrupted run.
    whole = tmp_path / "whole"
    assert run_cli(*[a if a != str(run) else str(whole) for a in args]).returncode == 0
    proc = run_python(
        """
        import sys, keras
        a, b = (keras.saving.load_model(p + "/model.keras") for p in sys.argv[1:])
        print("STEPS", int(a.optimizer.iterations), int(b.optimizer.iterations))
    """,
        run,
        whole,
    )
    steps = proc.stdout.split("STEPS")[1].split()
    assert steps[0] == steps[1] == str(EPOCHS * 40), steps
    assert one_line_error(run_cli("train", "--resume", run), 2).endswith("the run is complete; nothing to resume")


def test_a_second_writer_is_refused(tmp_path):
    run = tmp_path / "busy"
    run.mkdir()
    (run / ".lock").write_text(str(os.getpid()))  # this test process is alive
    (run / "run.json").write_text(json.dumps({"status": "running", "training": {"backend": "tensorflow"}}))
    (run / "checkpoint.json").write_text(json.dumps({"epoch": 1}))
    line = one_line_error(run_cli("train", "--resume", run), 1)
    assert f"is being written by process {os.getpid()}" in line


TENSORBOARD = """
import json, sys
from core import train
run = train("mlp", "digits", backend="jax", hparams={"units": (16,)}, epochs=2, steps_per_epoch=4,
            tensorboard=True, seed=0, out=sys.argv[1], verbose=0)
import tensorflow as tf
from tensorflow.core.util import event_pb2
scalars = {}
for path in sorted(tf.io.gfile.glob(sys.argv[1] + "/tensorboard/*/events.out.tfevents.*")):
    split = path.split("/")[-2]
    for record in tf.data.TFRecordDataset(path):
        event = event_pb2.Event.FromString(record.numpy())
        for value in event.summary.value:
            scalars.setdefault(f"{split}/{value.tag}", []).append(event.step)
print(json.dumps(scalars))
"""


def test_tensorboard_logs_every_epoch_under_jax(tmp_path):
    """--tensorboard writes event files TensorBoard reads: loss and accuracy per epoch, train and
    validation, here from a JAX run (Keras's callback writes them with tf.summary)."""
    proc = run_python(TENSORBOARD, tmp_path / "run")
    scalars = json.loads(proc.stdout.strip().splitlines()[-1])
    for split in ("train", "validation"):
        for tag in ("epoch_loss", "epoch_accuracy"):
            assert scalars.get(f"{split}/{tag}") == [0, 1], scalars


TUNED = """
import json, sys
import keras
from core import load_run, train
out = sys.argv[1]
run = train("vae", "digits", hparams={"latent": 4, "filters": 4, "learning_rate": 0.004}, epochs=1,
            steps_per_epoch=4, schedule="cosine", warmup=2, clip_norm=1.0, seed=0, out=out, verbose=0)
report = {}
for name, model in (("trained", run.model), ("reloaded", load_run(out).model)):
    opt = model.optimizer
    report[name] = {"schedule": type(opt._learning_rate).__name__, "clipnorm": opt.clipnorm,
                    "rates": [float(keras.ops.convert_to_numpy(opt._learning_rate(s))) for s in range(4)]}
print(json.dumps(report))
"""


def test_an_architecture_that_compiles_itself_takes_the_runs_schedule_and_clipping(tmp_path):
    # The VAE compiles its own Adam at 0.004: --schedule, --warmup and --clip-norm tune that optimizer
    # (they were dropped before), and its rate is the schedule's peak; the saved model keeps them.
    proc = run_python(TUNED, tmp_path / "vae", env={"KERAS_BACKEND": "jax"})
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    for name in ("trained", "reloaded"):
        tuned = report[name]
        assert tuned["schedule"] == "CosineDecay" and tuned["clipnorm"] == 1.0, report
        assert tuned["rates"][:3] == pytest.approx([0.0, 0.002, 0.004]) and tuned["rates"][3] < 0.004, report


def test_options_that_replace_an_architectures_optimizer_are_refused(tmp_path):
    proc = run_cli(
        "train", "--arch", "vae", "--data", "digits", "--optimizer", "sgd", "--epochs", "1", "--out", tmp_path / "r"
    )
    line = one_line_error(proc, 2)
    assert "--optimizer" in line and "'vae'" in line and "compiles its own optimizer" in line, line


def test_a_mixed_float16_run_loads_in_another_process_and_initializes_another(tmp_path):
    # Keras gives a model loss scaling (a LossScaleOptimizer, 4 more variables) only when the
    # model's own policy is mixed_float16 at compile time: loaded under float32, the saved optimizer
    # state did not fit, and --init-from such a run failed.
    common = ["--arch", "mlp", "--data", "digits", "--backend", "jax", "--epochs", "1", "--quiet"]
    source = run_cli("train", *common, "--precision", "mixed_float16", "--out", tmp_path / "source")
    assert source.returncode == 0, source.stderr
    again = run_cli("train", *common, "--init-from", tmp_path / "source", "--out", tmp_path / "again")
    assert again.returncode == 0, again.stderr
    assert "layers matched" in again.stdout + again.stderr, again.stdout
