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
    paths = export(run_dir, to, parse_pairs(pairs_opt, "--opt"), plugins=extra)
    for path in paths:
        click.echo(str(path))
    if report:
        for path in write_report(run_dir, to, plugins=extra):
            click.echo(str(path))
