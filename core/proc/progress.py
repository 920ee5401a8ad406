"""Progress bars for long steps (int8 calibration, fine-tuning, verify), on the user's terminal only.

A bar is drawn on the terminal the user's stderr was when kerastack started, and erased when the
step ends (``transient``). Two things stand between a step and that terminal: the CLI routes fd 2
through the native-log filter (``core.proc.quiet``, which passes whole lines only), and exports and
fine-tuning run in child processes whose fd 2 is that filter's pipe. So the filter keeps the real
stderr's descriptor, and ``call_in_backend`` hands the terminal's descriptor to every child
(``KERASTACK_PROGRESS_FD``, kept open with ``pass_fds``). When stderr is not a terminal (a pipe, a
file, CI) nothing is drawn, not a byte. rich is imported only when a bar is drawn.
"""

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from core.proc.quiet import real_stderr

ENV = "KERASTACK_PROGRESS_FD"


def terminal_fd() -> int | None:
    """The descriptor of the user's terminal for progress bars (inherited from a parent process,
    the stderr the native-log filter replaced, or fd 2), or None when it is not a terminal."""
    candidates = []
    if os.environ.get(ENV, "").isdigit():
        candidates.append(int(os.environ[ENV]))
    else:
        candidates += [real_stderr(), 2]
    for fd in candidates:
        try:
            if fd is not None and os.isatty(fd):
                return fd
        except OSError:
            continue
    return None


class ProgressBar:
    """One step's bar: ``advance(n)`` after each unit of work; ``set_total(n)`` once it is known.
    Where there is no terminal both do nothing."""

    def __init__(self, progress: Any = None, task: Any = None) -> None:
        self._progress, self._task = progress, task

    def advance(self, n: int = 1) -> None:
        """``n`` more units done."""
        if self._progress is not None:
            self._progress.advance(self._task, n)

    def set_total(self, total: int | None) -> None:
        """The number of units the step has (None: unknown)."""
        if self._progress is not None:
            self._progress.update(self._task, total=total)


@contextlib.contextmanager
def progress_bar(total: int | None, description: str) -> Iterator[ProgressBar]:
    """A transient progress bar for a step of ``total`` units (None: unknown), shown on the user's
    terminal and erased when the step ends; a bar that does nothing when stderr is not a terminal.

    Example::

        with progress_bar(len(batches), "verify") as bar:
            for batch in batches:
                ...
                bar.advance()
    """
    fd = terminal_fd()
    if fd is None:
        yield ProgressBar()
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with os.fdopen(os.dup(fd), "w", encoding="utf-8", errors="replace") as stream:
        console = Console(file=stream, force_terminal=True)
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        progress = Progress(*columns, console=console, transient=True, redirect_stdout=False, redirect_stderr=False)
        with progress:
            yield ProgressBar(progress, progress.add_task(description, total=total))
