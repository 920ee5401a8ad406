"""Running a core operation in a child process with another Keras backend.

Keras fixes its backend at import, so a process that already runs JAX cannot also convert with
TensorFlow. ``call_in_backend`` starts ``python -m core.worker`` with ``KERAS_BACKEND`` set, hands it
the call (``core.proc.request``: the function by its module and name, which the child imports), and turns
the child's error back into the same one-line error here.
"""

import os
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.proc import request as requests
from core.proc.progress import ENV as PROGRESS_ENV
from core.proc.progress import terminal_fd


def call_in_backend(backend: str, function: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    """``function(**kwargs)`` in a fresh process whose Keras backend is ``backend``; its return value.

    ``function`` must be defined at the top level of an importable module (the child imports it);
    ``kwargs`` and the return value must be JSON-able. An error in the child is raised here as a
    ``KerastackError`` (``UsageError`` for usage errors) with the same one-line message.
    """
    with tempfile.TemporaryDirectory(prefix="kerastack-child-") as tmp:
        request, answer = Path(tmp) / "request.json", Path(tmp) / "answer.json"
        name = requests.write_request(request, function, kwargs)
        env = dict(os.environ, KERAS_BACKEND=backend)
        # The child's fd 2 may be the native-log filter's pipe: its progress bars need the terminal.
        terminal = terminal_fd()
        if terminal is not None:
            env[PROGRESS_ENV] = str(terminal)
        command = requests.command(request, answer)
        proc = subprocess.run(command, env=env, pass_fds=() if terminal is None else (terminal,))
        return requests.read_answer(answer, f"the {backend} process for {name}", proc.returncode)
