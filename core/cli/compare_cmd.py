import json

import click

from core.cli.tables import number, show, table
from core.errors import UsageError
from core.runs.catalog import better, compare


@click.command("compare")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--all", "everything", is_flag=True, help="Show every setting, not only those that differ.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def command(run_dirs, everything, as_json):
    """Show runs side by side: the settings that differ, then every metric (the best in bold).

    \b
    Example:
      kerastack compare runs/cnn-digits-tf runs/cnn-digits-jax
      setting           cnn-digits-tf  cnn-digits-jax
      ───────────────────────────────────────────────
      training.backend  tensorflow     jax
      training.epochs   15             5

    \b
      metric         cnn-digits-tf  cnn-digits-jax
      ────────────────────────────────────────────
      val_accuracy          0.9815          0.9741
      test_accuracy         0.9815          0.9704
      ...
      seconds                 20.3            10.0
    """
    if len(run_dirs) < 2:
        raise UsageError(f"compare needs at least two run directories, got {len(run_dirs)}: {run_dirs[0]}")
    result = compare(run_dirs, everything=everything)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    from rich.text import Text

    names = result["runs"]
    settings = table(["setting", *names])
    for key, values in result["settings"].items():
        settings.add_row(key, *[number(v) for v in values])
    if not result["settings"]:
        settings.add_row("(the same settings)", *[""] * len(names))
    if len(set(result["status"])) > 1:
        settings.add_row("status", *result["status"])
    show(settings)
    click.echo()
    metrics = table(["metric", *names], right=tuple(names))
    for key, values in result["metrics"].items():
        best = _best(key, values)
        digits = 1 if key == "seconds" else 4
        metrics.add_row(
            key, *[Text(number(v, digits), style="bold" if i in best else "") for i, v in enumerate(values)]
        )
    show(metrics)


def _best(key, values):
    """Indexes of the best values of metric ``key`` (none when it has no direction or no rival)."""
    way = better(key)
    numbers = [v for v in values if isinstance(v, (int, float))]
    if way is None or len(numbers) < 2 or len(set(numbers)) == 1:
        return set()
    target = max(numbers) if way == "higher" else min(numbers)
    return {i for i, v in enumerate(values) if v == target}
