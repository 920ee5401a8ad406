"""Stopping a ``--processes 2`` run (issue 23): SIGINT or SIGTERM to the launcher or to one worker
stops every worker at its next batch end; within a bounded time no process of the run and no temp
folder is left; the run is interrupted, its MLflow run KILLED, the exit code 128 + the signal, and
one resume hint names the real run folder.

The launcher is the same on every backend; what differs is the worker: JAX's (and TensorFlow's)
distributed runtime takes SIGTERM when it joins, torch's takes nothing. So torch runs the launcher
and worker scenarios (one run, stopped, resumed, stopped again), JAX and TensorFlow the SIGTERM to
the launcher.
The launcher's own protocol (which signal counts as a second Ctrl-C, a worker that stopped before
it could say so) is checked on stand-in workers.
"""

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
from conftest import KERASTACK, read_json

from core.proc.launch import GRACE_S, LAUNCHER_ENV, _Stop, _watch, launched

THREADS = {"OMP_NUM_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}
ARGS = ["--arch", "mlp", "--data", "digits", "--hp", "units=16", "--epochs", "500", "--batch-size", "16"]
ARGS += ["--seed", "1", "--distribute", "data", "--processes", "2", "--quiet"]
BOUND_S = 30  # every process of a stopped run is gone within this


def _start(tmp_path, *argv):
    """``kerastack ARGV`` in its own process group (as a shell job), its temp files in tmp/."""
    env = dict(os.environ, **THREADS, TMPDIR=str(tmp_path / "tmp"))
    env.pop("KERASTACK_PLUGINS", None)
    (tmp_path / "tmp").mkdir(exist_ok=True)
    logs = [open(tmp_path / name, "w") for name in ("stdout", "stderr")]  # noqa: SIM115 - the process writes them
    return subprocess.Popen(
        [KERASTACK, *map(str, argv)], stdout=logs[0], stderr=logs[1], env=env, cwd=tmp_path, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as from a terminal
    )  # fmt: skip


def _epochs(out):
    path = out / "history.csv"
    return len(path.read_text().splitlines()) - 1 if path.exists() else 0


def _when(proc, ready, what):
    deadline = time.monotonic() + 240
    while not ready():
        assert proc.poll() is None, f"ended before {what}: {proc.returncode}"
        assert time.monotonic() < deadline, f"no {what} after 240 s"
        time.sleep(0.1)


def _alive(pid):
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _stop(tmp_path, proc, signum, rank=None):
    """Send ``signum`` to the launcher (or to the worker of ``rank``); wait until every process of
    the run is gone (at most ``BOUND_S``). The exit code, the seconds that took, stdout and stderr."""
    workers = psutil.Process(proc.pid).children(recursive=True)
    pids = [proc.pid] + [w.pid for w in workers]
    target = proc.pid if rank is None else next(w.pid for w in workers if w.environ().get("RANK") == str(rank))
    sent = time.monotonic()
    os.kill(target, signum)
    while any(_alive(pid) for pid in pids) and time.monotonic() - sent < BOUND_S + 30:
        time.sleep(0.1)
    took = time.monotonic() - sent
    left = [pid for pid in pids if _alive(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"processes {left} still running {took:.0f} s after {signal.Signals(signum).name}"
    proc.wait()
    return proc.returncode, took, (tmp_path / "stdout").read_text(), (tmp_path / "stderr").read_text()


def _check_stopped(tmp_path, out, code, took, stderr, signum):
    """The run stopped by itself (no worker killed), in time, left nothing, and says once how to go on."""
    assert code == 128 + signum, (code, stderr[-3000:])
    assert took < GRACE_S and "did not stop" not in stderr, (took, stderr[-3000:])
    assert [p.name for p in (tmp_path / "tmp").iterdir() if p.name.startswith("kerastack")] == []
    assert read_json(out / "run.json")["status"] == "interrupted"
    hints = [line for line in stderr.splitlines() if "--resume" in line]
    assert len(hints) == 1 and hints[0].startswith(f"kerastack: {out} interrupted"), stderr
    assert hints[0].endswith(f"--resume {out}"), stderr
    assert "kerastack-" not in stderr, stderr  # no temp folder named: only the run folder
    assert stderr.rstrip().endswith("kerastack: interrupted") and "Traceback" not in stderr, stderr[-3000:]


@pytest.mark.slow
@pytest.mark.sweep  # make test: each signal on its own, below and in test_interrupt.py
def test_torch_sigterm_to_the_launcher_then_sigint_to_a_worker_of_the_resumed_run(tmp_path):
    from mlflow import MlflowClient

    out = tmp_path / "run"
    proc = _start(tmp_path, "train", *ARGS, "--backend", "torch", "--out", out, "--track", "mlflow")
    _when(proc, lambda: (out / "checkpoint.json").exists(), "checkpoint")
    code, took, _, stderr = _stop(tmp_path, proc, signal.SIGTERM)
    # It used to die at once and leave its workers training to the last epoch, and its temp folder.
    _check_stopped(tmp_path, out, code, took, stderr, signal.SIGTERM)
    tracking = read_json(out / "run.json")["tracking"]
    info = MlflowClient(tracking["uri"]).get_run(tracking["run_id"]).info
    assert (info.status, info.end_time is not None) == ("KILLED", True)

    trained = _epochs(out)
    proc = _start(tmp_path, "train", "--resume", out)
    _when(proc, lambda: _epochs(out) > trained, "epoch after resuming")
    code, took, stdout, stderr = _stop(tmp_path, proc, signal.SIGINT, rank=1)
    # It used to go unnoticed by rank 0, which then failed in its next collective.
    _check_stopped(tmp_path, out, code, took, stderr, signal.SIGINT)
    resumed = [line for line in stdout.splitlines() if line.startswith("resuming ")]
    assert len(resumed) == 1 and resumed[0].startswith(f"resuming {out} at epoch "), stdout  # not rank 1's copy
    assert "kerastack-" not in stdout, stdout
    assert read_json(out / "checkpoint.json")["seconds"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_workers_stop_on_sigterm_although_their_runtime_takes_it(tmp_path, backend):
    """JAX's distributed client (and TensorFlow's collective runtime) takes SIGTERM, its preemption
    notice, when it joins: the workers trained on until the launcher killed them 20 s later."""
    out = tmp_path / "run"
    proc = _start(tmp_path, "train", *ARGS, "--backend", backend, "--out", out)
    _when(proc, lambda: (out / "checkpoint.json").exists(), "checkpoint")
    code, took, _, stderr = _stop(tmp_path, proc, signal.SIGTERM)
    _check_stopped(tmp_path, out, code, took, stderr, signal.SIGTERM)


def _sleeper(code="signal.signal(signal.SIGTERM, signal.SIG_IGN)"):
    """A stand-in worker: ready once it has set its signals up (by default it ignores SIGTERM)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", f"import signal, time\n{code}\nprint('ready', flush=True)\ntime.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout.readline() == "ready\n"
    return proc


@pytest.fixture
def default_signals():
    """The launcher's handlers go only over the default ones (pytest may run with SIGINT ignored)."""
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for signum in (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(signum, signal.SIG_DFL)
    yield
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def test_a_second_signal_to_the_launcher_kills_the_workers_a_passed_on_one_does_not(default_signals):
    """One Ctrl-C reaches the launcher from the terminal and again from each worker (passed on as
    SIGUSR1/SIGUSR2): only the launcher's own second one stops the workers at once."""
    workers = [_sleeper(), _sleeper()]
    try:
        with _Stop(workers) as stop:
            os.kill(os.getpid(), signal.SIGUSR2)  # a worker was sent SIGTERM: every worker is told
            assert stop.signum == signal.SIGTERM
            os.kill(os.getpid(), signal.SIGINT)  # the launcher's own first: no more than a stop
            os.kill(os.getpid(), signal.SIGUSR1)
            time.sleep(0.5)
            assert [w.poll() for w in workers] == [None, None]  # they ignore the relayed SIGTERM
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C again: at once
            assert [w.wait(timeout=10) for w in workers] == [-signal.SIGKILL, -signal.SIGKILL]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        for w in workers:
            w.kill()
            w.wait()


def test_a_worker_stopped_before_it_could_tell_stops_the_others(default_signals):
    """A worker ended by SIGTERM (before its own handler was set) or exiting 143 is a stop, not a
    failure: the others are told (here: killed by the relayed SIGTERM), and no failure is reported."""
    stopped = subprocess.Popen([sys.executable, "-c", "raise SystemExit(143)"])
    other = _sleeper(code="")
    with _Stop([stopped, other]) as stop:
        assert _watch([stopped, other], stop) == []
    assert (stop.signum, other.returncode) == (signal.SIGTERM, -signal.SIGTERM)


def test_a_child_that_a_worker_starts_is_no_worker(monkeypatch):
    """It inherits the worker's environment (call_in_backend in a rank): it must answer its caller,
    not end as a rank would, nor pass its signals to the launcher."""
    monkeypatch.setenv(LAUNCHER_ENV, str(os.getppid()))
    assert launched()
    monkeypatch.setenv(LAUNCHER_ENV, str(os.getpid()))  # its parent is not the launcher
    assert not launched()


def test_kerastack_pin_gives_each_worker_its_own_cpus(monkeypatch):
    from core.proc import launch

    mine = sorted(os.sched_getaffinity(0))
    monkeypatch.delenv(launch.PIN_ENV, raising=False)
    assert launch.CPUS_ENV not in launch._environment("torch", 0, 2, [29500])  # off by default
    monkeypatch.setenv(launch.PIN_ENV, "1")
    shares = [launch._environment("jax", rank, 2, [29500]).get(launch.CPUS_ENV) for rank in (0, 1)]
    if len(mine) < 2:
        assert shares == [None, None]
        return
    cpus = [set(map(int, share.split(","))) for share in shares]
    assert cpus[0] and cpus[1] and not cpus[0] & cpus[1] and cpus[0] | cpus[1] <= set(mine), shares
    monkeypatch.setenv(launch.CPUS_ENV, shares[1])
    before = os.sched_getaffinity(0)
    try:
        launch.pin()
        assert os.sched_getaffinity(0) == cpus[1]
    finally:
        os.sched_setaffinity(0, before)
