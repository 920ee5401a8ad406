"""The ``kerastack`` command: a thin click layer, one module per subcommand."""

from core.cli.app import build_cli, main

__all__ = ["build_cli", "main"]
