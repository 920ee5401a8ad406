"""The errors the command line turns into one-line messages and exit codes."""

import difflib


class KerastackError(Exception):
    """A failure the user can act on; the CLI prints it on one line and exits 1."""

    exit_code = 1


class UsageError(KerastackError):
    """Bad input from the user (a name, an option, a flag); the CLI exits 2."""

    exit_code = 2


def did_you_mean(name, choices):
    """' (did you mean 'x'?)' for the closest choice, or ''."""
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def choices_text(choices):
    choices = sorted(str(c) for c in choices)
    return ", ".join(choices) if choices else "(none)"
