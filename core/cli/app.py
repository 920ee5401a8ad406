"""The ``kerastack`` command line: a thin layer over the core's functions.

``--plugin`` and ``--debug`` may appear anywhere on the line: plugins must be loaded before click
builds the command list (a plugin may add commands), so they are read first.
"""

import os
import sys
import traceback

import click

from core.cli.plugin_commands import add_plugin_commands
from core.errors import Interrupted, KerastackError
from core.plugins import get_plugin_host
from core.proc import quiet

HELP = """kerastack: train Keras 3 models from plugins on TensorFlow, JAX or PyTorch; export them to LiteRT.

\b
Global options (anywhere on the line):
  --plugin MODULE|FILE.py   load a plugin (repeatable; also KERASTACK_PLUGINS=a,b)
  --debug                   show tracebacks and the native libraries' log lines
  --trace-plugins           log every plugin load, registration and call on stderr
  --unsafe                  load .keras files that hold Python code (Lambda layers): trusted files only
\b
Environment: KERAS_BACKEND (default backend), KERASTACK_PLUGINS, KERASTACK_DISABLE_PLUGINS=a,b,
KERASTACK_TRACE_PLUGINS=1.
"""


def build_cli(host):
    from core.cli import (
        compare_cmd,
        export_cmd,
        info_cmd,
        new_cmd,
        plugins_cmd,
        report_cmd,
        run_cmd,
        runs_cmd,
        train_cmd,
        verify_cmd,
    )

    @click.group(help=HELP, context_settings={"help_option_names": ["-h", "--help"]})
    @click.version_option(package_name="kerastack")
    @click.pass_context
    def cli(ctx):
        ctx.obj = host
        if ctx.invoked_subcommand not in ("plugins", "info"):  # those two list broken plugins themselves
            for info in host.broken:
                click.echo(
                    f"kerastack: warning: {info.label()} is broken: {info.error} (see kerastack plugins)", err=True
                )

    for module in (
        run_cmd,
        train_cmd,
        export_cmd,
        verify_cmd,
        runs_cmd,
        report_cmd,
        compare_cmd,
        plugins_cmd,
        info_cmd,
        new_cmd,
    ):
        cli.add_command(module.command)
    add_plugin_commands(host, cli)
    return cli


# The global switches that hold for the whole process (and its children): the variable each sets.
SWITCH_ENV = {"--trace-plugins": "KERASTACK_TRACE_PLUGINS", "--unsafe": "KERASTACK_UNSAFE"}


def split_globals(argv):
    """``(switches, plugins, rest)``: the global options taken out of ``argv``: the switches given
    (``--debug`` and those of ``SWITCH_ENV``), the ``--plugin`` values, and the rest. It sets
    nothing: ``main`` does, so that reading a command line (tests/warm.py) changes no state."""
    switches, plugins, rest = set(), [], []
    args = iter(argv)
    for arg in args:
        if arg == "--":
            rest.append(arg)
            rest.extend(args)
        elif arg == "--debug" or arg in SWITCH_ENV:
            switches.add(arg)
        elif arg == "--plugin":
            value = next(args, None)
            if value is None:
                raise click.UsageError("--plugin needs a module name or a .py file")
            plugins.append(value)
        elif arg.startswith("--plugin="):
            plugins.append(arg.split("=", 1)[1])
        else:
            rest.append(arg)
    return switches, plugins, rest


def _interrupt_code(exc):
    """128 + the signal that stopped the command: 130 for Ctrl-C (SIGINT), 143 for SIGTERM."""
    return exc.exit_code if isinstance(exc, Interrupted) else 130


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or bool(os.environ.get("KERASTACK_DEBUG"))
    try:
        switches, plugins, argv = split_globals(argv)
        os.environ.update({SWITCH_ENV[s]: "1" for s in switches if s in SWITCH_ENV})
        if debug:
            os.environ["KERASTACK_DEBUG"] = "1"
        else:
            quiet.filter_native_stderr()
        cli = build_cli(get_plugin_host(plugins))
        cli.main(args=argv, prog_name="kerastack", standalone_mode=False)
        code = 0
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.exceptions.Abort as exc:
        # Ctrl-C: click turns KeyboardInterrupt into Abort; shells expect 128 + the signal for it.
        interrupted = isinstance(exc.__cause__, KeyboardInterrupt)
        click.echo("kerastack: interrupted" if interrupted else "kerastack: aborted", err=True)
        code = _interrupt_code(exc.__cause__) if interrupted else 1
    except KeyboardInterrupt as exc:
        click.echo("kerastack: interrupted", err=True)
        code = _interrupt_code(exc)
    except click.ClickException as exc:
        where = exc.ctx.command_path if getattr(exc, "ctx", None) else "kerastack"
        hint = f" (see {where} --help)" if isinstance(exc, click.UsageError) else ""
        click.echo(f"{where}: error: {' '.join(exc.format_message().split())}{hint}", err=True)
        code = exc.exit_code
    except KerastackError as exc:
        if debug:
            traceback.print_exc()
        click.echo(f"kerastack: error: {' '.join(str(exc).split())}", err=True)
        code = exc.exit_code
    except Exception as exc:
        if debug:
            traceback.print_exc()
        text = " ".join(str(exc).split())
        click.echo(f"kerastack: error: {type(exc).__name__}: {text} (run with --debug for the traceback)", err=True)
        code = 1
    sys.stdout.flush()
    sys.exit(code)
