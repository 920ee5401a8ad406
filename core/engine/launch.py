"""``--processes N`` on one machine: start N workers, each told its rank through its engine's
standard variables (as torchrun, SLURM or Kubernetes would tell it), watch them, and end them all
when one fails.

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
import time
from pathlib import Path

from core.engine import distributed
from core.errors import KerastackError, UsageError

PORT_ENV = "KERASTACK_DIST_PORT"  # the first port to use (default: free ones, picked here)
GRACE_S = 20  # after a worker fails, how long the others get to notice and end by themselves
HOST = "127.0.0.1"


def wanted(record):
    """Whether this call should start the workers: more than one process asked for, and this
    process is not one of them already."""
    training = record["training"]
    return training.get("processes", 1) > 1 and distributed.world(training["backend"]).size == 1


def run(record, out, verbose, resume_from, target="core.engine.training:_execute_json"):
    """Train ``record`` in ``record["training"]["processes"]`` local processes; return when every
    one has ended well, else raise a ``KerastackError`` naming the ranks that failed."""
    training = record["training"]
    backend, processes = training["backend"], training["processes"]
    ports = _ports(processes if backend == "tensorflow" else 1)
    with tempfile.TemporaryDirectory(prefix="kerastack-launch-") as tmp:
        workers = []
        try:
            for rank in range(processes):
                request = Path(tmp) / f"request{rank}.json"
                kwargs = dict(record=record, out=str(out), verbose=verbose if rank == 0 else 0, resume_from=resume_from)
                request.write_text(
                    json.dumps(
                        {"target": "core.engine.distributed:run_rank", "kwargs": {"target": target, "kwargs": kwargs}}
                    )
                )
                env = _environment(backend, rank, processes, ports)
                env[distributed.SCRATCH_ENV] = tmp
                env[distributed.TORCH_INIT_ENV] = (Path(tmp) / "torch-store").as_uri() if backend == "torch" else ""
                workers.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "core.worker", str(request), str(Path(tmp) / f"result{rank}.json")],
                        env=env,
                    )
                )
            failures = _watch(workers)
        except KeyboardInterrupt:
            _end(workers, wait_s=GRACE_S)
            raise
        except BaseException:
            _end(workers, wait_s=0)
            raise
    if failures:
        first = failures[0]
        kept = (
            f"the run folder {out} keeps its last checkpoint: kerastack train --resume {out}"
            if (Path(out) / "checkpoint.json").exists()
            else "no checkpoint was written"
        )
        raise KerastackError(
            f"{len(failures)} of {processes} processes failed (first: rank {first[0]}, {first[1]}); {kept}"
        )


def _environment(backend, rank, processes, ports):
    env = dict(os.environ, KERAS_BACKEND=backend)
    env.update(
        {
            distributed.LOCAL_ENV: "1",
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


def _watch(workers):
    """Wait for every worker; once one fails, the others get ``GRACE_S`` to end (their collectives
    fail within seconds), then are killed. ``[(rank, cause)]`` of those that failed."""
    failures, deadline = [], None
    while True:
        running = 0
        for rank, proc in enumerate(workers):
            code = proc.poll()
            if code is None:
                running += 1
            elif code != 0 and rank not in [r for r, _ in failures]:
                cause = _cause(code)
                failures.append((rank, cause))
                if code < 0:  # a signal: the worker could not say so itself
                    print(f"kerastack: rank {rank} of {len(workers)}: {cause}", file=sys.stderr, flush=True)
                deadline = deadline or time.monotonic() + GRACE_S
        if not running:
            return failures
        if deadline is not None and time.monotonic() > deadline:
            for rank, proc in enumerate(workers):
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                    failures.append((rank, f"ended by the launcher {GRACE_S} s after rank {failures[0][0]} failed"))
                    print(f"kerastack: rank {rank} of {len(workers)}: {failures[-1][1]}", file=sys.stderr, flush=True)
            return failures
        time.sleep(0.2)


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
