import click

from core.cli.options import pairs_option
from core.deploy.export import export, write_report
from core.params import parse_pairs


@click.command("export")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--to", "to", required=True, metavar="NAME", help="Exporter (see kerastack plugins).")
@pairs_option("--opt", "an exporter option")
@click.option(
    "--report/--no-report",
    default=True,
    show_default=True,
    help="Write the exporter's report, if it has one (tflite: report.md/report.png comparing "
    "every .tflite of the run with Keras).",
)
@click.pass_obj
def command(host, run_dir, to, pairs_opt, report):
    """Export the model of RUN_DIR; files go to RUN_DIR/export/NAME/.

    \b
    Example:
      kerastack export runs/cnn-digits-20261121-101500 --to tflite --opt quantize=int8
      runs/cnn-digits-20261121-101500/export/tflite/model_int8.tflite
      ...
    """
    extra = list(host.extra) or None  # default: the plugins recorded in the run
    export_and_report(run_dir, to, parse_pairs(pairs_opt, "--opt"), plugins=extra, report=report)


def export_and_report(run_dir, to, options, *, plugins=None, report=True):
    """What ``kerastack export`` does (also for a config file's ``[[export]]``): export, print each
    path written, then the exporter's report and its paths. Returns every path."""
    paths = export(run_dir, to, options, plugins=plugins)
    for path in paths:
        click.echo(str(path))
    reported = write_report(run_dir, to, plugins=plugins) if report else []
    for path in reported:
        click.echo(str(path))
    return [*paths, *reported]
