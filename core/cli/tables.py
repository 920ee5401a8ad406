"""Rich tables shared by several subcommands: one look, numbers formatted alike, nothing cut when piped.

rich is imported inside the functions: building the command list stays instant.
"""

import sys


def console():
    """A console on stdout. Markup is off: a run named ``[test]`` prints as it is.

    A terminal gets its own width (columns wrap); a pipe or a file gets room enough that no cell is
    cut, so ``kerastack runs | grep`` sees whole names.
    """
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 240, markup=False, highlight=False, emoji=False)


def show(renderable):
    """Print a table on stdout without the spaces rich pads each line's last cell with."""
    out = console()
    with out.capture() as captured:
        out.print(renderable)
    for line in captured.get().splitlines():
        print(line.rstrip())


def table(columns, *, right=(), title=None, header=True):
    """A rich Table with ``columns``; those named in ``right`` (numbers) are right-aligned."""
    from rich import box
    from rich.table import Table

    t = Table(
        box=box.SIMPLE_HEAD if header else None,
        show_header=header,
        show_edge=False,
        pad_edge=False,
        collapse_padding=header,
        title=title,
        title_justify="left",
    )
    for name in columns:
        t.add_column(name, justify="right" if name in right else "left")
    return t


def number(value, digits=4):
    """``0.9815``, ``20,161``, ``-`` for nothing; text stays as it is."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 1000 else f"{value:.{digits}f}"
    return str(value)
