"""Ctrl-C: a training stops, exits 130 as shells expect, and leaves a run that says so and resumes
(or, stopped before its first checkpoint, starts again in the same folder)."""

import gc
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import KERASTACK, read_json, run_cli

from core.engine.callbacks import Interrupts
from core.errors import Interrupted


def _start(out, backend, *extra):
    """``kerastack train`` of a long run (500 epochs), in the background."""
    env = dict(os.environ)
    env.pop("KERASTACK_PLUGINS", None)
    argv = [KERASTACK, "train", "--arch", "mlp", "--data", "digits", "--hp", "units=16", "--epochs", "500"]
    argv += ["--backend", backend, "--out", str(out), "--quiet", *extra]
    # As from a terminal: a test runner started in the background (CI, `&`) passes SIGINT on ignored,
    # and a process that starts with SIGINT ignored rightly keeps ignoring it.
    return subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, preexec_fn=_default_sigint
    )


def _default_sigint():
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt_when(proc, path, signum=signal.SIGINT):
    """``signum`` once ``path`` exists; stderr. The training must stop within 60 s, and exit 128 +
    the signal (130 for SIGINT, 143 for SIGTERM)."""
    deadline = time.monotonic() + 180
    while not path.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signum)
    try:
        _, stderr = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"{signal.Signals(signum).name} did not stop the training within 60 s")
    assert proc.returncode == 128 + signum, (proc.returncode, stderr[-2000:])
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    assert stderr.rstrip().endswith("kerastack: interrupted"), stderr
    return stderr


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_sigint_during_training_exits_130_and_marks_the_run(tmp_path, backend):
    out = tmp_path / "run"
    stderr = _interrupt_when(_start(out, backend), out / "checkpoint.json")
    record = read_json(out / "run.json")
    assert record["status"] == "interrupted", record["status"]
    assert f"with: kerastack train --resume {out}" in stderr, stderr
    history = (out / "history.csv").read_text().splitlines()
    assert 2 <= len(history) < 501  # a header and at least one whole epoch, not the full 500

    listing = run_cli("runs", tmp_path)
    assert "interrupted" in listing.stdout, listing.stdout


@pytest.mark.slow
def test_sigterm_stops_as_ctrl_c_does_and_the_resumed_run_reports_the_whole_time(tmp_path):
    """A scheduler's SIGTERM: interrupted, resumable, exit 143 (it was 130, as for Ctrl-C). The
    resumed run's seconds (summary line, metrics.json) count the time before the checkpoint too."""
    out = tmp_path / "run"
    stderr = _interrupt_when(_start(out, "torch"), out / "checkpoint.json", signal.SIGTERM)
    assert read_json(out / "run.json")["status"] == "interrupted"
    assert [line for line in stderr.splitlines() if "--resume" in line][0].endswith(f"--resume {out}"), stderr
    state = read_json(out / "checkpoint.json")
    assert state["seconds"] > 0, state
    record = read_json(out / "run.json")
    record["training"]["epochs"] = state["epoch"] + 1  # one epoch more, not 500
    (out / "run.json").write_text(json.dumps(record))

    resumed = run_cli("train", "--resume", out)
    assert resumed.returncode == 0, resumed.stderr
    metrics = read_json(out / "metrics.json")
    assert metrics["epochs"] == state["epoch"] + 1 and metrics["seconds"] > state["seconds"], (metrics, state)
    assert f"{metrics['epochs']} epochs, torch, {metrics['seconds']:.1f} s" in resumed.stdout, resumed.stdout


@pytest.mark.slow
def test_sigint_before_the_first_checkpoint_then_the_same_out_again(tmp_path):
    """TensorFlow, stopped as its training starts (where a KeyboardInterrupt used to be swallowed by
    its gc callback); no checkpoint (--checkpoint-every 0), so the hint starts it again in place."""
    out = tmp_path / "run"
    stderr = _interrupt_when(_start(out, "tensorflow", "--checkpoint-every", "0"), out / "run.json")
    assert read_json(out / "run.json")["status"] == "interrupted"
    assert not (out / "checkpoint.json").exists()
    hint = f"start it again with: kerastack train --config {out} --out {out}"
    assert hint in stderr, stderr

    again = run_cli("train", "--config", out, "--out", out, "--epochs", "1", "--quiet")
    assert again.returncode == 0, again.stderr
    assert read_json(out / "run.json")["status"] == "complete"
    assert len((out / "history.csv").read_text().splitlines()) == 2  # the old epochs are gone


def test_a_run_killed_before_its_first_checkpoint_starts_again_in_its_folder(tmp_path):
    """SIGKILL leaves run.json "running" and a lock whose writer is gone: no live writer and no
    checkpoint, so the same command starts it again there (it used to say "already holds a run")."""
    out = tmp_path / "run"
    proc = _start(out, "jax", "--checkpoint-every", "0")
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / "run.json").exists() and read_json(out / "run.json").get("status") == "running":
            break
        time.sleep(0.05)
    proc.kill()
    proc.communicate()
    assert read_json(out / "run.json")["status"] == "running" and not (out / "checkpoint.json").exists()
    again = run_cli("train", "--config", out, "--out", out, "--epochs", "1", "--quiet")
    assert again.returncode == 0, again.stderr
    assert read_json(out / "run.json")["status"] == "complete"


@pytest.fixture
def python_sigint():
    """Python's own SIGINT handler, as in a terminal (pytest may have started with SIGINT ignored:
    CI, `&`), and whatever was there before afterwards."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_an_interrupt_lost_in_a_gc_callback_still_stops_the_training(monkeypatch, python_sigint):
    """Python ignores a KeyboardInterrupt raised inside a gc callback (as TensorFlow's
    _xla_gc_callback is): the request is kept and raised at the next safe point."""
    dropped = []
    monkeypatch.setattr(sys, "unraisablehook", lambda unraisable: dropped.append(unraisable.exc_type))

    def callback(phase, info):
        if phase == "start":
            os.kill(os.getpid(), signal.SIGINT)
            sum(range(1000))  # the handler runs here, inside the callback, and its exception is dropped

    with Interrupts() as interrupts:
        gc.callbacks.append(callback)
        try:
            gc.collect()
        finally:
            gc.callbacks.remove(callback)
        assert dropped == [Interrupted] and interrupts.requested  # a KeyboardInterrupt that knows its signal
        with pytest.raises(KeyboardInterrupt):
            interrupts.check()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_sigterm_is_taken_as_ctrl_c_and_restored_after(python_sigint):
    """A scheduler's SIGTERM stops a training as Ctrl-C does (at the next batch inside fit, so the
    pending checkpoint is flushed and the run marked interrupted), not by killing the process."""
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        with Interrupts() as interrupts:
            interrupts.in_fit = True
            os.kill(os.getpid(), signal.SIGTERM)  # recorded, not raised: fit stops at the next batch
            assert interrupts.requested
            with pytest.raises(KeyboardInterrupt):
                interrupts.check()
            interrupts.in_fit = False
            with pytest.raises(KeyboardInterrupt):  # outside fit (or a second one): at once
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(1)
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, previous)
