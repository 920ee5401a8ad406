"""The commands plugins add (``register_commands``), each of whose unexpected errors names its plugin."""

import functools

import click

from core.errors import KerastackError, one_line


def add_plugin_commands(host, cli):
    """Let ``host``'s plugins add commands to ``cli`` (a ``click.Group``); a plugin whose hook raises
    is marked broken, and a command that raises names its plugin."""
    for impl in host.pm.hook.register_commands.get_hookimpls():
        info = host.plugins[impl.plugin_name]
        before = dict(cli.commands)
        try:
            impl.function(cli=cli)
        except Exception as exc:
            info.error = f"register_commands: {one_line(exc)}"
        for name, command in cli.commands.items():
            if before.get(name) is not command and command.callback is not None:
                command.callback = _naming_errors(command.callback, f"command {name!r} from {info.label()}")


def _naming_errors(callback, owner):
    """``callback`` with its unexpected exceptions turned into errors that name ``owner``."""

    @functools.wraps(callback)
    def run(*args, **kwargs):
        try:
            return callback(*args, **kwargs)
        except (KerastackError, click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:
            raise KerastackError(f"{owner} failed: {one_line(exc)}") from exc

    return run
