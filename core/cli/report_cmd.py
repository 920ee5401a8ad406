import click

from core.cli.tables import number, show, table
from core.files import format_size
from core.runs.report import FILE_KEYS, RESULT_KEYS, gather, write_report

# What the terminal summary shows of each exported model's verify results.
SHOWN = {
    "tflite_accuracy": "accuracy",
    "tflite_map50": "mAP@0.5",
    "agreement": "agreement",
    "tflite_mae": "mae",
    "tflite_mse": "mse",
    "latency_ms_p50": "p50 ms",
}


@click.command("report")
@click.argument("run_dir", type=click.Path(file_okay=False))
def command(run_dir):
    """Write RUN_DIR/report.html: settings, metrics, plots and exports in one self-contained file.

    The plots (learning curves; the confusion matrix of classifiers) are made first if missing.
    Export results are those already measured (kerastack verify); nothing is run here.

    \b
    Example:
      kerastack report runs/cnn-digits-20261121-233635
      cnn-digits-20261121-233635: cnn on digits
        backend   tensorflow, 15 epochs, 20.3 s
        accuracy  train 0.9968  validation 0.9815  test 0.9815
        loss      train 0.0358  validation 0.0753  test 0.0377
        tflite    model_float32.tflite  79.5 KiB
        tflite    model_int8.tflite  28.5 KiB  accuracy 0.9778  agreement 0.9926  p50 ms 0.011
      report: runs/cnn-digits-20261121-233635/report.html
    """
    path = write_report(run_dir)
    facts = gather(run_dir)
    record, metrics = facts["record"], facts["metrics"]
    arch = record.get("architecture", {})
    options = " ".join(f"{k}={v}" for k, v in (arch.get("options") or {}).items())
    click.echo(
        f"{facts['name']}: {arch.get('name', '?')}{f' ({options})' if options else ''} on "
        f"{record.get('dataset', {}).get('name', '?')}"
    )
    t = table(["", ""], header=False)
    training = record.get("training", {})
    about = [
        str(training.get("backend") or metrics.get("backend") or "?"),
        f"{metrics.get('epochs', training.get('epochs', '?'))} epochs",
    ]
    if "seconds" in metrics:
        about.append(f"{metrics['seconds']:.1f} s")
    if facts["status"] != "complete":
        about.append(facts["status"])
    t.add_row("  backend", ", ".join(about))
    for warning in record.get("warnings") or ():  # what training found wrong with the model
        t.add_row("  warning", warning)
    for base, row in facts["metric_table"].items():
        t.add_row(f"  {base}", "  ".join(f"{split} {number(v)}" for split, v in row.items()))
    for exporter, rows in facts["exports"].items():
        described = [r for r in rows if any(k in r for k in (*FILE_KEYS, *RESULT_KEYS))]
        for r in described or rows:  # the models, where metadata says which files they are
            shown = "  ".join(
                f"{label} {number(r[k], 3 if k.startswith('latency') else 4)}" for k, label in SHOWN.items() if k in r
            )
            t.add_row(f"  {exporter}", "  ".join(p for p in (r["file"], format_size(r["size_bytes"]), shown) if p))
    show(t)
    click.echo(f"report: {path}")
