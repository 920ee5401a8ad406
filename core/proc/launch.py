"""``--processes N`` on one machine: start N workers (``python -m core.worker``, each handed the
same call in ``core.proc.request``'s format), each told its rank through its engine's standard
variables (as torchrun, SLURM or Kubernetes would tell it), watch them, and end them all when one
fails. A worker that fails or is stopped ends at once, its rank and cause in one line (``end_rank``).

Stopping: SIGINT or SIGTERM to the launcher, to a worker or to the process group stops every
worker at its next batch end, rank 0 with its checkpoint written and its run marked interrupted.
The launcher relays a stop to every worker (as SIGTERM: a worker started from a background shell
ignores SIGINT); a worker that is sent one first tells the launcher (``tell_launcher``: SIGUSR1 for
SIGINT, SIGUSR2 for SIGTERM), which relays it. A worker takes only its first stop signal (one
Ctrl-C reaches it twice: from the terminal and relayed); a second one to the launcher kills the
workers at once. Workers still running ``GRACE_S`` after the stop are killed. The launcher then
raises ``Interrupted`` with the signal that started the stop.

Every port is on 127.0.0.1: torch's gloo (``GLOO_SOCKET_IFNAME=lo``; the rendezvous is a file,
as torch's TCPStore listens on every interface), the JAX
coordinator (``JAX_COORDINATOR_BIND_ADDRESS``), TensorFlow's gRPC servers (``TF_CONFIG`` addresses).
"""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from core.errors import Interrupted, UsageError
from core.proc import quiet
from core.proc import request as requests

PORT_ENV = "KERASTACK_DIST_PORT"  # the first port to use (default: free ones, picked here)
# Set in each worker: the launcher's pid; that every port is on 127.0.0.1; the folder the other
# ranks keep their private folders in; torch's rendezvous, a FileStore (torch's TCPStore listens on
# every interface, whatever MASTER_ADDR says; measured with torch 2.13; cluster launchers use env://).
LAUNCHER_ENV = "KERASTACK_LAUNCHER_PID"
LOCAL_ENV = "KERASTACK_LOCAL_LAUNCH"
SCRATCH_ENV = "KERASTACK_SCRATCH"
TORCH_INIT_ENV = "KERASTACK_TORCH_INIT"
# ``KERASTACK_PIN=1`` before launching: each worker pinned to its own CPUs, which the launcher
# names in CPUS_ENV.
PIN_ENV = "KERASTACK_PIN"
CPUS_ENV = "KERASTACK_CPUS"
GRACE_S = 20  # after a worker fails or a stop is asked for, how long the workers get to end by themselves
HOST = "127.0.0.1"
# How a worker tells its launcher which stop it was sent.
TELL = {signal.SIGINT: signal.SIGUSR1, signal.SIGTERM: signal.SIGUSR2}
STOPPING = b"\nkerastack: stopping after this batch (Ctrl-C again to stop at once)\n"


def run(function, kwargs, backend, processes):
    """``function(**kwargs)`` in ``processes`` local workers under ``backend``, each told its rank;
    ``[(rank, cause)]`` of the workers that failed (none: every one ended well). ``Interrupted``
    when a signal stopped them."""
    ports = _ports(processes if backend == "tensorflow" else 1)
    workers = []
    with tempfile.TemporaryDirectory(prefix="kerastack-launch-") as tmp, _Stop(workers) as stop:
        request = Path(tmp) / "request.json"
        requests.write_request(request, function, kwargs)  # the same call for every rank, each its answer
        commands = [requests.command(request, Path(tmp) / f"answer{rank}.json") for rank in range(processes)]
        try:
            for rank, command in enumerate(commands):
                if stop.signum is not None:  # stopped while starting: start no more
                    break
                env = _environment(backend, rank, processes, ports)
                env.update({SCRATCH_ENV: tmp, LAUNCHER_ENV: str(os.getpid())})
                env[TORCH_INIT_ENV] = (Path(tmp) / "torch-store").as_uri() if backend == "torch" else ""
                workers.append(subprocess.Popen(command, env=env))
            failures = _watch(workers, stop)
        except KeyboardInterrupt:  # Ctrl-C where the stop's handlers could not be installed
            stop.request(signal.SIGINT)
            _end(workers, wait_s=GRACE_S)
            raise
        except BaseException:
            _end(workers, wait_s=0)
            raise
    if stop.signum is not None and (len(workers) < processes or any(proc.returncode for proc in workers)):
        raise Interrupted(stop.signum)  # not every worker finished before the stop
    return failures


def launched():
    """Whether this process is a worker that ``run`` started and that still runs under it (not one
    process alone, one started by a cluster's launcher, nor a child that a worker started)."""
    pid = os.environ.get(LAUNCHER_ENV)
    return bool(pid) and os.getppid() == int(pid)  # (the pid of a launcher that is gone may be reused)


def tell_launcher(signum):
    """In a worker (``launched()``): pass a stop signal (SIGINT or SIGTERM) to the launcher, which
    relays it to every worker."""
    os.kill(int(os.environ[LAUNCHER_ENV]), TELL.get(signum, signal.SIGUSR2))


def end_rank(answer):
    """In a worker, on an ``answer`` that is not a value: one line on stderr naming this rank and
    the error, and exit 1; a stop ends it without a line (the launcher says it once), with 128 + the
    signal. At once (JAX would block in its shutdown barrier), after what this process wrote to
    stderr has passed the native-noise filter (``os._exit`` does not wait for its thread)."""
    sys.stdout.flush()
    sys.stderr.flush()
    quiet.restore_stderr()
    if "interrupted" in answer:
        os._exit(128 + answer["interrupted"])
    line = " ".join(answer["error"].splitlines()[0].split()) if answer["error"].strip() else "failed"
    os.write(2, f"kerastack: rank {os.environ.get('RANK')} of {os.environ.get('WORLD_SIZE')}: {line}\n".encode())
    os._exit(1)


class _Stop:
    """The launcher's handling of a stop (see the module's docstring): ``signum`` is the signal that
    started it (None: no stop), ``deadline`` when the workers still running are killed."""

    def __init__(self, workers):
        self.workers = workers
        self.signum = None
        self.deadline = None
        self.sent = 0  # stop signals sent to the launcher itself (not passed on by a worker)
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            defaults = {signal.SIGINT: signal.default_int_handler}  # an ignored SIGINT stays ignored
            for signum in (signal.SIGINT, signal.SIGTERM, *TELL.values()):
                if signal.getsignal(signum) is defaults.get(signum, signal.SIG_DFL):
                    self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc):
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)

    def _handle(self, signum, frame):
        told = {sent: asked for asked, sent in TELL.items()}
        if signum not in told:
            self.sent += 1
        if self.sent > 1:  # a second signal to the launcher itself (Ctrl-C again): at once
            for proc in self.workers:
                _signal(proc, signal.SIGKILL)
        self.request(told.get(signum, signum))

    def request(self, signum):
        """Stop every worker at its next batch end; ``signum`` is what the launcher exits with."""
        if self.signum is not None:
            return
        self.signum, self.deadline = signum, time.monotonic() + GRACE_S
        os.write(2, STOPPING)
        for proc in self.workers:
            _signal(proc, signal.SIGTERM)


def _environment(backend, rank, processes, ports):
    env = dict(os.environ, KERAS_BACKEND=backend)
    env.update(
        {
            LOCAL_ENV: "1",
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": str(processes),
            "LOCAL_WORLD_SIZE": str(processes),
            "MASTER_ADDR": HOST,
            "MASTER_PORT": str(ports[0]),
        }
    )
    if "OMP_NUM_THREADS" not in os.environ:  # the cores shared out, as torchrun does (it sets 1)
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // processes))
    cpus = _cpus_of(rank, processes)
    if cpus:
        env[CPUS_ENV] = ",".join(map(str, cpus))
    if backend == "torch":
        env["GLOO_SOCKET_IFNAME"] = "lo"
    elif backend == "jax":
        env.update(
            KERAS_DISTRIBUTION_JOB_ADDRESSES=f"{HOST}:{ports[0]}",
            KERAS_DISTRIBUTION_NUM_PROCESSES=str(processes),
            KERAS_DISTRIBUTION_PROCESS_ID=str(rank),
            JAX_COORDINATOR_BIND_ADDRESS=f"{HOST}:{ports[0]}",
        )
    else:
        cluster = {"worker": [f"{HOST}:{port}" for port in ports]}
        env["TF_CONFIG"] = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": rank}})
    return env


def _cpus_of(rank, processes):
    """With ``KERASTACK_PIN=1``, the CPUs worker ``rank`` is pinned to: its share of this process's
    CPUs, contiguous and apart from the others' (none when there are fewer CPUs than workers). XLA's
    and TensorFlow's CPU thread pools are sized by the CPUs a process may run on, not by
    ``OMP_NUM_THREADS``: unpinned, each of N workers makes pools for every core, and they compete.
    Off by default: on a machine that other jobs share, a pinned worker cannot move off a busy core
    (measured here: slower under load)."""
    if os.environ.get(PIN_ENV) != "1" or not hasattr(os, "sched_getaffinity"):
        return []
    mine = sorted(os.sched_getaffinity(0))
    share = len(mine) // processes
    return mine[rank * share : (rank + 1) * share] if share else []


def pin():
    """In a worker: run on the CPUs the launcher gave it (before any framework makes its threads)."""
    cpus = os.environ.get(CPUS_ENV)
    if cpus and hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})
        except (OSError, ValueError):
            pass  # CPUs gone (a cgroup changed): run where allowed


def _ports(count):
    """``count`` ports on 127.0.0.1 that are free now: from ``KERASTACK_DIST_PORT`` on if set (a
    port in use is a usage error), else chosen by the system."""
    base = os.environ.get(PORT_ENV)
    if base:
        ports = [int(base) + i for i in range(count)]
        for port in ports:
            with socket.socket() as s:
                try:
                    s.bind((HOST, port))
                except OSError as exc:
                    raise UsageError(
                        f"{PORT_ENV}={base}: port {port} on {HOST} is in use ({exc.strerror}); choose another "
                        f"first port, or unset {PORT_ENV} to let the system choose"
                    ) from None
        return ports
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind((HOST, 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _watch(workers, stop):
    """Wait for every worker; once one fails, the others get ``GRACE_S`` to end (their collectives
    fail within seconds), then are killed; the same after a stop (``stop``), which a worker ended by
    a stop signal before it could pass it on starts too. ``[(rank, cause)]`` of the workers that
    failed; none after a stop (they ended on it)."""
    failures, deadline = {}, None
    while True:
        for rank, proc in enumerate(workers):
            code = proc.poll()
            if code in (None, 0) or rank in failures:
                continue
            if _stop_signal(code) is not None:
                stop.request(_stop_signal(code))
            failures[rank] = _cause(code)
            if code < 0 and stop.signum is None:  # a signal: the worker could not say so itself
                print(f"kerastack: rank {rank} of {len(workers)}: {failures[rank]}", file=sys.stderr, flush=True)
            deadline = deadline or time.monotonic() + GRACE_S
        if all(proc.returncode is not None for proc in workers):
            break
        if stop.signum is not None:
            deadline = min(deadline or stop.deadline, stop.deadline)
        if deadline is not None and time.monotonic() > deadline:
            for rank, proc in enumerate(workers):
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                    failures[rank] = (
                        f"did not stop within {GRACE_S} s; killed"
                        if stop.signum is not None
                        else f"ended by the launcher {GRACE_S} s after rank {next(iter(failures))} failed"
                    )
                    print(f"kerastack: rank {rank} of {len(workers)}: {failures[rank]}", file=sys.stderr, flush=True)
            break
        time.sleep(0.2)
    return [] if stop.signum is not None else list(failures.items())


def _stop_signal(code):
    """The stop signal (SIGINT, SIGTERM) that ended a worker with exit code ``code``, or None: killed
    by it (before its handler was set), or exited 128 + it (``Interrupted``)."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        if code in (-signum, 128 + signum):
            return signum
    return None


def _signal(proc, signum):
    """``signum`` to a worker not reaped yet (its pid is still its own), from a signal handler: no
    ``Popen`` method, whose lock the interrupted main thread may hold."""
    if proc.returncode is None:
        try:
            os.kill(proc.pid, signum)
        except OSError:
            pass


def _cause(code):
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _end(workers, wait_s):
    """Stop the workers still running: they get ``wait_s`` seconds, then SIGKILL."""
    deadline = time.monotonic() + wait_s
    for proc in workers:
        try:
            proc.wait(timeout=max(deadline - time.monotonic(), 0))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
