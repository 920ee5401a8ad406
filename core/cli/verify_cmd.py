import json
from pathlib import Path

import click

from core.deploy.layer_table import format_layer_errors, recorded_layer_errors
from core.deploy.verify import exported_from, keep_result, verify
from core.errors import KerastackError
from core.files import format_size
from core.runs import load_run


@click.command("verify")
@click.argument("tflite_file", type=click.Path(dir_okay=False))
@click.option("--run", "run_dir", required=True, metavar="RUN_DIR", help="The run the model came from.")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option(
    "--other-run",
    is_flag=True,
    help="Compare with a run the file was not exported from (its metadata names its own); not recorded.",
)
@click.option(
    "--layers",
    is_flag=True,
    help="Also print the per-layer quantization error the export measured (int8, int16x8), worst first.",
)
@click.option(
    "--client",
    default="litert",
    show_default=True,
    metavar="NAME",
    help="litert (kerastack's runner against Keras) or mediapipe: MediaPipe Tasks fed pixels or raw text, "
    "against LiteRT (pip install 'kerastack[mediapipe]').",
)
@click.pass_obj
def command(host, tflite_file, run_dir, threads, as_json, other_run, layers, client):
    """Run TFLITE_FILE on the LiteRT runtime against the run's Keras model and test split.

    \b
    Example:
      kerastack verify runs/cnn-digits-.../export/tflite/model_int8.tflite --run runs/cnn-digits-...
      model_int8.tflite  test n=270  accuracy tflite 0.9667 keras 0.9704  agreement 0.9926 ...
      kerastack verify .../model_int8.tflite --run runs/cnn-digits-... --layers
      ... then the export's per-layer error table, worst first (int8 and int16x8 files)
      kerastack verify .../model_int8.tflite --run runs/cnn-... --client mediapipe
      model_int8.tflite  mediapipe ImageClassifier  test n=45  samples agreeing with LiteRT 1.0000 ...
    """
    plugins = list(host.extra) or None
    if client != "litert":
        from core.deploy.client import check_client, format_client_row

        result = check_client(tflite_file, run_dir, client, plugins=plugins)
        click.echo(json.dumps(result, indent=2) if as_json else format_client_row(result))
        return
    entry = recorded_layer_errors(tflite_file) if layers else None  # before the work: a float file has none
    result = verify(tflite_file, run_dir, threads=threads, plugins=plugins, record=False, other_run=other_run)
    if entry is not None and as_json:
        result = {
            **result,
            "layer_errors": entry["layer_errors"],
            **({"mixed": entry["mixed"]} if "mixed" in entry else {}),
        }
    click.echo(json.dumps(result, indent=2) if as_json else format_row(result))
    if entry is not None and not as_json:
        click.echo(format_layers(entry, where=Path(tflite_file).parent), nl=False)
    if exported_from(tflite_file, run_dir):
        return  # another run's folder: its verify.json speaks of its own run
    try:  # printed first: a read-only run still shows what was measured (and a tracked one logs it)
        keep_result(tflite_file, load_run(run_dir), result)
    except KerastackError as exc:
        raise KerastackError(f"the results above were not recorded: {exc}") from exc


def format_row(r):
    parts = [f"{r['file'].rsplit('/', 1)[-1]}", f"{r['split']} n={r['samples']}"]
    if "tflite_accuracy" in r:
        parts.append(f"accuracy tflite {r['tflite_accuracy']:.4f} keras {r['keras_accuracy']:.4f}")
        parts.append(f"agreement {r['agreement']:.4f}")
    if "tflite_map50" in r:
        parts.append(f"mAP@0.5 tflite {r['tflite_map50']:.4f} keras {r['keras_map50']:.4f}")
        parts.append(f"mAP@0.5:0.95 tflite {r['tflite_map']:.4f} keras {r['keras_map']:.4f}")
        parts.append(f"boxes matched {r['agreement']:.4f} of {r['matched_boxes']}")
    if "tflite_mae" in r:
        parts.append(f"mae tflite {r['tflite_mae']:.4f} keras {r['keras_mae']:.4f}")
    if "tflite_mse" in r:
        parts.append(f"mse tflite {r['tflite_mse']:.5f} keras {r['keras_mse']:.5f}")
    parts.append(f"max|diff| {r['max_abs_diff']:.2e}")
    size = f"size {format_size(r['size_bytes'], 'KiB')}"
    if Path(r["file"]).exists():  # what a download costs: the export report's gzip column
        from core.deploy.compare import gzip_size

        size += f" (gzip {format_size(gzip_size(Path(r['file'])), 'KiB')})"
    parts.append(size)
    parts.append(f"p50 {r['latency_ms_p50']:.3f} ms (p90 {r['latency_ms_p90']:.3f}, {r['threads']} thread)")
    return "  ".join(parts) + "".join(f"\nwarning: {w}" for w in _warnings(r))


def _warnings(r):
    """verify()'s warnings (constant outputs), and the outputs an integer output clipped."""
    found = list(r.get("warnings", ()))
    if r.get("clipped_outputs"):
        low, high = r["output_limits"]
        found.append(
            f"{r['clipped_outputs']} outputs clipped: the file's integer output covers [{low:.6g}, {high:.6g}] "
            "and Keras's predictions lie beyond it (see output_range in model.json)"
        )
    return found


TERMINAL_WIDTH = 48  # characters of the layer column on a terminal (fused layers' names are long)
TERMINAL_LAYERS = 15  # rows of the per-layer table on a terminal; the files hold them all


def format_layers(entry, where=None, limit=TERMINAL_LAYERS):
    """The per-layer table of a file's metadata entry (its ``limit`` worst layers, and where the
    full table is: ``report.md``/``model.json`` in the folder ``where``), after what a mixed model
    kept float."""
    mixed = entry.get("mixed")
    head = ""
    if mixed:
        head = (
            f"kept float: {', '.join(mixed['float_layers']) or '(none)'}; int8 ops {mixed['int8_ops']:.0%}, "
            f"int8 weights {mixed['int8_weights']:.0%}\n"
        )
    rows = entry["layer_errors"]
    table = format_layer_errors(rows[:limit], width=TERMINAL_WIDTH)
    if len(rows) <= limit:
        return head + table
    folder = Path(where) if where is not None else None
    files = [n for n in ("report.md", "model.json") if folder is None or (folder / n).exists()]
    place = " and ".join(str(folder / n) if folder is not None else n for n in files)
    flagged = sum(bool(r.get("flagged")) for r in rows[limit:])
    return (
        head
        + table
        + (
            f"... {len(rows) - limit} more layers ({flagged} flagged), better than these: the full table is in {place} "
            "(or --json)\n"
        )
    )
