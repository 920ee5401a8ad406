"""Running a core operation in a child process with another Keras backend.

Keras fixes its backend at import, so a process that already runs JAX cannot also convert with
TensorFlow. ``call_in_backend`` starts ``python -m core.worker`` with ``KERAS_BACKEND`` set, passes
the call as JSON (the function by its module and name, which the child imports), and turns the
child's error back into the same one-line error here.
"""

import importlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.errors import Interrupted, KerastackError, UsageError
from core.progress import ENV as PROGRESS_ENV
from core.progress import terminal_fd


def call_in_backend(backend: str, function: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    """``function(**kwargs)`` in a fresh process whose Keras backend is ``backend``; its return value.

    ``function`` must be defined at the top level of an importable module (the child imports it);
    ``kwargs`` and the return value must be JSON-able. An error in the child is raised here as a
    ``KerastackError`` (``UsageError`` for usage errors) with the same one-line message.
    """
    target = _target(function)
    with tempfile.TemporaryDirectory(prefix="kerastack-child-") as tmp:
        request, result = Path(tmp) / "request.json", Path(tmp) / "result.json"
        request.write_text(json.dumps({"target": target, "kwargs": kwargs}))
        env = dict(os.environ, KERAS_BACKEND=backend)
        # The child's fd 2 may be the native-log filter's pipe: its progress bars need the terminal.
        terminal = terminal_fd()
        if terminal is not None:
            env[PROGRESS_ENV] = str(terminal)
        command = [sys.executable, "-m", "core.worker", str(request), str(result)]
        proc = subprocess.run(command, env=env, pass_fds=() if terminal is None else (terminal,))
        if not result.exists():
            raise KerastackError(f"the {backend} process for {target} died (exit code {proc.returncode})")
        answer = json.loads(result.read_text())
    if answer.get("interrupted"):  # Ctrl-C or SIGTERM reached the child (its handling done): the same here
        raise Interrupted(answer["interrupted"])
    if "error" in answer:
        cls = UsageError if answer.get("exit_code") == 2 else KerastackError
        raise cls(answer["error"])
    return answer["value"]


def _target(function):
    """``"module:name"`` of a top-level function, checked to resolve back to the same object."""
    module, name = getattr(function, "__module__", None), getattr(function, "__qualname__", "")
    if not callable(function) or not module or "." in name or "<" in name or module == "__main__":
        raise TypeError(f"call_in_backend needs a function defined at the top level of a module, got {function!r}")
    if getattr(importlib.import_module(module), name, None) is not function:
        raise TypeError(f"call_in_backend: {module}:{name} does not name {function!r}")
    return f"{module}:{name}"


def main(argv):
    if not os.environ.get("KERASTACK_DEBUG"):
        from core.quiet import filter_native_stderr

        filter_native_stderr()
    request_path, result_path = argv
    request = json.loads(Path(request_path).read_text())
    module, _, name = request["target"].partition(":")
    try:
        value = getattr(importlib.import_module(module), name)(**request["kwargs"])
        answer = {"value": value}
    except KerastackError as exc:
        if os.environ.get("KERASTACK_DEBUG"):
            traceback.print_exc()
        answer = {"error": str(exc), "exit_code": exc.exit_code}
    except KeyboardInterrupt as exc:  # Ctrl-C: no traceback; the caller stops as it would have here
        answer = {"interrupted": getattr(exc, "signum", signal.SIGINT)}
    except Exception as exc:
        traceback.print_exc() if os.environ.get("KERASTACK_DEBUG") else None
        answer = {"error": f"{type(exc).__name__}: {exc}", "exit_code": 1}
    Path(result_path).write_text(json.dumps(answer, default=str))
