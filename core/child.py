"""Running a core operation in a child process with another Keras backend.

Keras fixes its backend at import, so a process that already runs JAX cannot also convert with
TensorFlow. ``call_in_backend`` starts ``python -m core.worker`` with ``KERAS_BACKEND`` set, passes
the call as JSON, and turns the child's error back into the same one-line error here.
"""

import importlib
import json
import os
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

from core.errors import KerastackError, UsageError


def call_in_backend(backend, target, kwargs):
    """Call ``target`` ("module:function") with JSON-able ``kwargs`` in a ``backend`` process."""
    with tempfile.TemporaryDirectory(prefix="kerastack-child-") as tmp:
        request, result = Path(tmp) / "request.json", Path(tmp) / "result.json"
        request.write_text(json.dumps({"target": target, "kwargs": kwargs}))
        env = dict(os.environ, KERAS_BACKEND=backend)
        proc = subprocess.run([sys.executable, "-m", "core.worker", str(request), str(result)], env=env)
        if not result.exists():
            raise KerastackError(f"the {backend} process for {target} died (exit code {proc.returncode})")
        answer = json.loads(result.read_text())
    if "error" in answer:
        cls = UsageError if answer.get("exit_code") == 2 else KerastackError
        raise cls(answer["error"])
    return answer["value"]


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
    except Exception as exc:
        traceback.print_exc() if os.environ.get("KERASTACK_DEBUG") else None
        answer = {"error": f"{type(exc).__name__}: {exc}", "exit_code": 1}
    Path(result_path).write_text(json.dumps(answer, default=str))
