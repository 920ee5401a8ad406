import json

import click

from core.cli.tables import number, show, table
from core.runs.catalog import list_runs


@click.command("runs")
@click.argument("root", default="runs", type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON (every metric of every run).")
def command(root, as_json):
    """List the runs under ROOT (default: runs), newest first.

    The metric shown is the run's accuracy, else its mean absolute error, else its loss. Runs
    trained with --track mlflow show their MLflow run id.

    \b
    Example:
      kerastack runs
      run                         arch    data     backend     epochs  metric       val    test  status
      ──────────────────────────────────────────────────────────────────────────────────────────────────
      resnet-shapes-20261122-1000 resnet  shapes   tensorflow    4/20  accuracy  0.8500       -  running
      mlp-tabular-20261122-0900   mlp     tabular  tensorflow       3  mae       0.4000  0.3900  complete
      cnn-digits-20261121-233635  cnn     digits   jax             15  accuracy  0.9815  0.9815  complete
    """
    runs = list_runs(root)
    if as_json:
        click.echo(json.dumps(runs, indent=2))
        return
    if not runs:
        click.echo(f"no runs under {root} (kerastack train writes them there)")
        return
    tracked = any(r.get("mlflow_run_id") for r in runs)  # the column only where a run is tracked
    columns = ["run", "arch", "data", "backend", "epochs", "metric", "val", "test", "status"]
    t = table(columns + (["mlflow run"] if tracked else []), right=("epochs", "val", "test"))
    for r in runs:
        if r["status"] == "unreadable":
            t.add_row(r["name"], *["-"] * 7, f"unreadable: {r['error']}", *(["-"] if tracked else []))
            continue
        epochs = number(r["epochs"])
        if r["status"] != "complete" and r["planned_epochs"]:
            epochs = f"{r['epochs'] or 0}/{r['planned_epochs']}"
        t.add_row(
            r["name"],
            r["architecture"] or "-",
            r["dataset"] or "-",
            r["backend"] or "-",
            epochs,
            r["key_metric"] or "-",
            number(r["val"]),
            number(r["test"]),
            r["status"],
            *([r.get("mlflow_run_id") or "-"] if tracked else []),
        )
    show(t)
