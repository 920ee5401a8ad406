"""Options shared by several subcommands."""

import click

backend_option = click.option(
    "--backend",
    default=None,
    metavar="NAME",
    help="Keras backend: tensorflow, jax or torch (default: $KERAS_BACKEND, else tensorflow).",
)

track_option = click.option(
    "--track",
    default=None,
    metavar="TRACKER",
    help="Log the run to mlflow: parameters, metrics per epoch, files (store: mlflow.db beside the run "
    "folders, or MLFLOW_TRACKING_URI; needs kerastack[track]).",
)


def pairs_option(flag, what):
    return click.option(
        flag,
        "pairs_" + flag.strip("-").replace("-", "_"),
        multiple=True,
        metavar="NAME=VALUE",
        help=f"Set {what} (repeatable).",
    )
