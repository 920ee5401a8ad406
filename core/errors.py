"""The errors the command line turns into one-line messages and exit codes."""

import difflib
import signal
from collections.abc import Iterable


class KerastackError(Exception):
    """A failure the user can act on; the CLI prints it on one line and exits 1."""

    exit_code = 1


class UsageError(KerastackError):
    """Bad input from the user (a name, an option, a flag); the CLI exits 2."""

    exit_code = 2


class Interrupted(KeyboardInterrupt):
    """A stop asked for by a signal: Ctrl-C (SIGINT) or SIGTERM (``timeout``, a batch scheduler).

    A ``KeyboardInterrupt``, so every ``except KeyboardInterrupt`` handles it as Ctrl-C; it keeps
    which signal it was, and the CLI exits ``128 + signum`` as shells expect (130, 143)."""

    def __init__(self, signum=signal.SIGINT):
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)

    @property
    def exit_code(self):
        return 128 + self.signum


def did_you_mean(name: object, choices: Iterable[object]) -> str:
    """``" (did you mean 'x'?)"`` for the closest of ``choices`` to ``name``, or ``""``."""
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def choices_text(choices: Iterable[object]) -> str:
    """The choices sorted and comma-separated (``"(none)"`` when empty), for "valid: ..." messages."""
    choices = sorted(str(c) for c in choices)
    return ", ".join(choices) if choices else "(none)"


def one_line(exc: BaseException, *, first: bool = False) -> str:
    """``"TypeName: message"`` on one line, for an error that wraps ``exc``.

    The message's whitespace is collapsed; with ``first=True`` only its first line is kept (for
    tools such as the TFLite converter whose later lines are a listing). No message: the type name.
    """
    text = str(exc).strip()
    if first and text:
        text = text.splitlines()[0]
    text = " ".join(text.split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
