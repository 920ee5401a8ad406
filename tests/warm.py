"""Warm processes for the tests: a fresh process per check, without paying its imports each time.

Most of ``make test``'s processes spent more time importing than checking: ``import keras`` takes
4-8 s here (TensorFlow 7 s, torch 5 s, JAX 3 s) and a ``kerastack train`` of a tiny model under
TensorFlow was 90 % imports. So each xdist worker keeps one *zygote* per backend: a process that
has imported keras under that backend (and nothing of kerastack) and forks a child for each
``run_cli``/``run_python`` call that names that backend. The child is a new process with its own
pid, environment, working directory, stdout and stderr; it runs the command as a fresh one would
and exits with its code. What a fork cannot be is a process that has not imported keras, so those
calls get a fresh process, as before:

- no backend told (a command's ``--backend``, ``train``'s and ``run``'s default, ``export --to
  tflite``: ``backend_of``; ``KERAS_BACKEND`` in a job's ``env``): the checks of what a command
  imports, ``--help``, ``--resume``, ``verify``;
- an environment that differs from the zygote's in what libraries read at import (``JAX_*``,
  ``XLA_FLAGS``, ``TF_*``, ``OMP_*``, ``PYTHONPATH``, ...);
- ``fresh=True``, and every call when ``KERASTACK_TEST_FRESH=1``.

Processes that kerastack itself starts (the exporter's TensorFlow child, ``--processes`` workers)
are always fresh: they are what is under test.
"""

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from core.backend import BACKENDS

FRESH = os.environ.get("KERASTACK_TEST_FRESH") == "1"
"""Every call in a fresh process (``KERASTACK_TEST_FRESH=1``): slower, for comparison."""

# What the libraries read at import (the zygote has read it already): a call whose environment
# differs in one of these gets a fresh process.
_READ_AT_IMPORT = ("JAX_", "XLA_", "TF_", "KERAS_", "OMP_", "MKL_", "KMP_", "OPENBLAS_", "TORCH", "CUDA")
_READ_AT_IMPORT += ("PYTHON", "LD_", "HOME", "NVIDIA_", "TPU_")
# Set by the zygote itself: its backend, and the log level the CLI sets before TensorFlow loads
# (core/proc/quiet.py).
_ZYGOTE_SETS = ("KERAS_BACKEND", "TF_CPP_MIN_LOG_LEVEL")

ZYGOTE = r"""
import atexit, importlib, json, os, random, site, sys, tempfile, traceback, types

os.environ.update(KERAS_BACKEND=sys.argv[1], TF_CPP_MIN_LOG_LEVEL="2")
import numpy
import keras  # under sys.argv[1]; TensorFlow with it, for the tensorflow zygote

proto_in, proto_out = os.fdopen(os.dup(0), "rb"), os.fdopen(os.dup(1), "wb", buffering=0)
null = os.open(os.devnull, os.O_RDWR)
for fd in (0, 1):
    os.dup2(null, fd)
pth_files = {p: set(os.listdir(p)) for p in site.getsitepackages() if os.path.isdir(p)}


def child(req):
    proto_in.close()
    proto_out.close()
    os.environ.clear()
    os.environ.update(req["env"])
    os.chdir(req["cwd"])
    for fd, path in ((1, req["stdout"]), (2, req["stderr"])):
        os.dup2(os.open(path, os.O_WRONLY | os.O_TRUNC), fd)
    # What a new process would find: its own temporary folder, random seeds, the files and
    # packages on disk now (a plugin written or installed since the zygote started).
    tempfile.tempdir = None
    random.seed()
    numpy.random.seed()
    for folder, names in pth_files.items():
        for name in sorted(set(os.listdir(folder)) - names):
            if name.endswith(".pth"):
                site.addpackage(folder, name, None)
    importlib.invalidate_caches()
    sys.argv = req["argv"]
    code = 0
    try:
        if req["kind"] == "cli":
            from core.cli import main

            main(req["argv"][1:])
        else:
            module = types.ModuleType("__main__")
            sys.modules["__main__"] = module
            exec(compile(req["code"], "<string>", "exec"), module.__dict__)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        try:
            atexit._run_exitfuncs()
        finally:
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except Exception:
                    pass
            os._exit(code)


proto_out.write(b'{"ready": true}\n')
while line := proto_in.readline():
    req = json.loads(line)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        child(req)
    proto_out.write(json.dumps({"pid": pid}).encode() + b"\n")
    _, status = os.waitpid(pid, 0)
    proto_out.write(json.dumps({"code": os.waitstatus_to_exitcode(status)}).encode() + b"\n")
"""


class Zygote:
    """One backend's warm process in this xdist worker: forks a child per call."""

    def __init__(self, backend):
        self.backend = backend
        self._pending = b""
        self.env = _snapshot()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", ZYGOTE, backend],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "KERAS_BACKEND": backend},
        )
        self._expect("ready", timeout=300)

    def alive(self):
        return self.proc.poll() is None

    def serves(self, env):
        """Whether a child of this zygote can stand for a fresh process with environment ``env``."""
        return _same_at_import(env, self.env)

    def run(self, request, args, timeout):
        with tempfile.TemporaryDirectory(prefix="kerastack-warm-") as tmp:
            out, err = Path(tmp) / "stdout", Path(tmp) / "stderr"
            out.touch()
            err.touch()
            # cwd None: the caller's working folder now, as subprocess.run would start in.
            request = {**request, "cwd": request["cwd"] or os.getcwd(), "stdout": str(out), "stderr": str(err)}
            self.proc.stdin.write(json.dumps(request).encode() + b"\n")
            self.proc.stdin.flush()
            pid = self._expect("pid", timeout=60)
            try:
                code = self._expect("code", timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(pid, signal.SIGKILL)
                self._expect("code", timeout=60)
                raise subprocess.TimeoutExpired(args, timeout, out.read_text(), err.read_text()) from None
            text = {"encoding": "utf-8", "errors": "replace"}
            return subprocess.CompletedProcess(args, code, out.read_text(**text), err.read_text(**text))

    def _expect(self, key, timeout):
        """The next message's ``key``, read from the pipe's descriptor (no buffer for select to miss)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._pending:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                raise subprocess.TimeoutExpired(f"zygote {self.backend}", timeout)
            chunk = os.read(fd, 65536)
            if not chunk:
                raise RuntimeError(f"the {self.backend} zygote ended (exit {self.proc.wait()})")
            self._pending += chunk
        line, self._pending = self._pending.split(b"\n", 1)
        message = json.loads(line)
        if key not in message:
            raise RuntimeError(f"the {self.backend} zygote said {message}, not {key!r}")
        return message[key]

    def close(self):
        if self.alive():
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def _snapshot():
    return {k: v for k, v in os.environ.items() if k not in _ZYGOTE_SETS}


def _same_at_import(env, other):
    """Whether ``env`` and ``other`` agree on every variable a library reads at import."""
    for key in set(env) | set(other):
        if key in _ZYGOTE_SETS or not key.startswith(_READ_AT_IMPORT):
            continue
        if env.get(key) != other.get(key):
            return False
    return True


_zygotes = {}


def zygote(backend, env):
    """This worker's zygote for ``backend`` if it can serve a call with ``env``, else None. A zygote
    started before this worker's own environment changed (a test set a variable for good) is
    replaced by one started from the environment now."""
    if FRESH or backend not in BACKENDS:
        return None
    found = _zygotes.get(backend)
    stale = found is not None and not found.serves(env) and _same_at_import(env, _snapshot())
    if found is None or not found.alive() or stale:
        if found is not None:
            found.close()
        found = _zygotes[backend] = Zygote(backend)
    return found if found.serves(env) else None


def close_all():
    for found in _zygotes.values():
        found.close()
    _zygotes.clear()


def backend_of(args, env):
    """The backend a fresh ``kerastack ARGS`` process with ``env`` imports keras under, where the
    command line says it before any file is read; else None."""
    from core.cli.app import split_globals

    _, _, rest = split_globals([str(a) for a in args])
    for i, arg in enumerate(rest):
        if arg == "--backend" and i + 1 < len(rest):
            return rest[i + 1]
        if arg.startswith("--backend="):
            return arg.split("=", 1)[1]
    command = rest[0] if rest else None
    if command in ("train", "run") and "--resume" not in rest and "--help" not in rest:
        return env.get("KERAS_BACKEND") or "tensorflow"  # what core.backend.resolve picks
    if command == "export" and ("--to", "tflite") in zip(rest, rest[1:]):
        return "tensorflow"  # the TFLite exporter's own backend (core.deploy.export)
    return None
