"""What a process hands the child it starts, ``python -m core.worker REQUEST ANSWER``, and what it
reads back: one format for ``call_in_backend`` (a call under another backend) and for the
``--processes N`` launcher (a training's workers).

The request names a function by ``"module:name"`` (the child imports it; checked here, when it is
written, to resolve back to the same function) and holds its keyword arguments; the answer holds
its return value, or the error as one line and its exit code, or the signal that stopped it. Both
are JSON files.
"""

import importlib
import json
import os
import signal
import sys
import traceback
from pathlib import Path

from core.errors import Interrupted, KerastackError, UsageError

WORKER = "core.worker"  # the module the child runs (`python -m core.worker`, found by that name)


def command(request, answer):
    """The child's command line: this Python, the worker module, the two files."""
    return [sys.executable, "-m", WORKER, str(request), str(answer)]


def write_request(path, function, kwargs):
    """The request file: ``function(**kwargs)``, where ``function`` is defined at the top level of an
    importable module and ``kwargs`` are JSON-able; the function's ``"module:name"``."""
    name = target(function)
    Path(path).write_text(json.dumps({"target": name, "kwargs": kwargs}))
    return name


def target(function):
    """``"module:name"`` of a top-level function, checked to resolve back to the same object."""
    module, name = getattr(function, "__module__", None), getattr(function, "__qualname__", "")
    if not callable(function) or not module or "." in name or "<" in name or module == "__main__":
        raise TypeError(f"a child process needs a function defined at the top level of a module, got {function!r}")
    if getattr(importlib.import_module(module), name, None) is not function:
        raise TypeError(f"{module}:{name} does not name {function!r}")
    return f"{module}:{name}"


def serve(path):
    """In the child: the call the request file at ``path`` asks for, made; its answer (a dict, for
    ``write_answer``)."""
    request = json.loads(Path(path).read_text())
    module, _, name = request["target"].partition(":")
    try:
        return {"value": getattr(importlib.import_module(module), name)(**request["kwargs"])}
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: no traceback; the caller stops as it would have
        return {"interrupted": getattr(exc, "signum", signal.SIGINT)}
    except Exception as exc:
        if os.environ.get("KERASTACK_DEBUG"):
            traceback.print_exc()
        if isinstance(exc, KerastackError):
            return {"error": str(exc), "exit_code": exc.exit_code}
        return {"error": f"{type(exc).__name__}: {exc}", "exit_code": 1}


def write_answer(path, answer):
    Path(path).write_text(json.dumps(answer, default=str))


def read_answer(path, what, returncode):
    """In the caller: the value of the answer file at ``path``; the child's error raised here as the
    same one-line error (``UsageError`` for usage errors), its stop as ``Interrupted``. ``what``
    names the child in the error of one that died without an answer."""
    if not Path(path).exists():
        raise KerastackError(f"{what} died (exit code {returncode})")
    found = json.loads(Path(path).read_text())
    if found.get("interrupted"):  # Ctrl-C or SIGTERM reached the child (its handling done): the same here
        raise Interrupted(found["interrupted"])
    if "error" in found:
        raise (UsageError if found.get("exit_code") == 2 else KerastackError)(found["error"])
    return found["value"]
