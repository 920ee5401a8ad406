"""Options shared by several subcommands."""

import click

backend_option = click.option(
    "--backend",
    default=None,
    metavar="NAME",
    help="Keras backend: tensorflow, jax or torch (default: $KERAS_BACKEND, else tensorflow).",
)


def pairs_option(flag, what):
    return click.option(
        flag,
        "pairs_" + flag.strip("-").replace("-", "_"),
        multiple=True,
        metavar="NAME=VALUE",
        help=f"Set {what} (repeatable).",
    )
