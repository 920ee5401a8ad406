"""``write_report()``: one self-contained HTML page about a run — settings, metrics, plots, exports.

The page embeds its plots as base64 PNG data URIs, so it can be mailed or attached to an issue as a
single file. Nothing here runs a model: export results come from the files exporters and
``verify`` left behind (``export/NAME/model.json``, ``export/NAME/verify.json``).
"""

import base64
import html
import json
import time
from pathlib import Path

from core.errors import KerastackError
from core.files import format_size, read_json, write_text
from core.runs.catalog import NOT_METRICS, parameters_trained, status_of
from core.runs.plots import CONFUSION_FILE, CURVES_FILE, PREDICTIONS_FILE, write_run_plots
from core.runs.run import HISTORY_FILE, load_run
from core.runs.versions import package_version

REPORT_FILE = "report.html"
EXPORT_DIR = "export"
# Keys of a verify() result, shown for each exported file that has them, in this order.
RESULT_KEYS = (
    "split",
    "samples",
    "accuracy",
    "tflite_accuracy",
    "keras_accuracy",
    "agreement",
    "tflite_mae",
    "keras_mae",
    "tflite_mse",
    "keras_mse",
    "max_abs_diff",
    "latency_ms_p50",
    "latency_ms_p90",
    "threads",
)
FILE_KEYS = ("quantize", "io", "batch")  # from model.json "files" entries
LABELS = {
    "tflite_accuracy": "accuracy",
    "keras_accuracy": "keras accuracy",
    "tflite_mae": "mae",
    "keras_mae": "keras mae",
    "tflite_mse": "mse",
    "keras_mse": "keras mse",
    "max_abs_diff": "max |diff| vs keras",
    "latency_ms_p50": "p50 ms",
    "latency_ms_p90": "p90 ms",
}
SPLITS = (("train", ""), ("validation", "val_"), ("test", "test_"))
COUNTS = ("epochs", "seconds", "trainable_params", "total_params")


def write_report(run_dir):
    """Write ``RUN_DIR/report.html`` (making missing or stale plots first); return its path."""
    run = load_run(run_dir)
    if _plots_stale(run.path):
        write_run_plots(run.path)
    return write_text(run.path / REPORT_FILE, render(gather(run.path)))


def gather(run_dir):
    """Everything the report shows, as plain data (also what ``kerastack report`` prints)."""
    run = load_run(run_dir)
    record = run.record
    return {
        "name": run.path.name,
        "path": str(run.path),
        "status": status_of(run),
        "record": record,
        "metrics": run.metrics,
        "metric_table": metric_table(run.metrics),
        "history": run.history,
        "plots": {name: run.path / name for name in (CURVES_FILE, CONFUSION_FILE) if (run.path / name).exists()},
        "exports": exports(run.path),
    }


def metric_table(metrics):
    """``{base: {"train": v, "validation": v, "test": v}}`` for every measured metric."""
    table = {}
    for key, value in metrics.items():
        if key in NOT_METRICS or key in COUNTS or not isinstance(value, (int, float)):
            continue
        split, base = next(((s, key[len(p) :]) for s, p in reversed(SPLITS) if p and key.startswith(p)), ("train", key))
        table.setdefault(base, {})[split] = value
    return table


def exports(run_dir):
    """``{exporter: [{"file", "size_bytes", ...what model.json and verify.json say of it}]}``.

    Every file under ``export/NAME/`` is listed; metadata files themselves are listed too, without
    results.
    """
    out = {}
    root = Path(run_dir) / EXPORT_DIR
    for folder in sorted(p for p in root.glob("*") if p.is_dir()) if root.is_dir() else ():
        described = _described(folder)
        rows = []
        for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
            row = {"file": path.name, "size_bytes": path.stat().st_size}
            row.update(described.get(path.name, {}))
            rows.append(row)
        out[folder.name] = rows
    return out


def _described(folder):
    """What ``model.json`` (its "files" entries) and ``verify.json`` say about each file, by name."""
    info = {}
    meta = _read_optional(folder / "model.json")
    for name, entry in (meta.get("files") or {}).items() if isinstance(meta, dict) else ():
        if isinstance(entry, dict):
            info.setdefault(name, {}).update({k: entry[k] for k in (*FILE_KEYS, *RESULT_KEYS) if k in entry})
    for name, result in _verify_results(_read_optional(folder / "verify.json")):
        info.setdefault(name, {}).update({k: result[k] for k in RESULT_KEYS if k in result})
    return info


def _verify_results(data):
    """``(file name, result)`` pairs from a verify.json: one ``verify()`` result, a list of them,
    or a mapping of file name to result."""
    if isinstance(data, dict) and "file" in data:
        data = [data]
    if isinstance(data, list):
        return [(Path(r["file"]).name, r) for r in data if isinstance(r, dict) and "file" in r]
    if isinstance(data, dict):
        return [(Path(k).name, r) for k, r in data.items() if isinstance(r, dict)]
    return []


def _read_optional(path):
    if not path.exists():
        return {}
    try:
        return read_json(path)
    except KerastackError:
        return {}  # a torn or foreign file must not stop the report; the file is still listed


def _plots_stale(run_dir):
    """Whether a plot is missing or older than the data it is drawn from."""
    pairs = [(CURVES_FILE, HISTORY_FILE), (CONFUSION_FILE, PREDICTIONS_FILE)]
    for plot, source in pairs:
        plot, source = run_dir / plot, run_dir / source
        if source.exists() and (not plot.exists() or plot.stat().st_mtime < source.stat().st_mtime):
            return True
    return False


# -- HTML ------------------------------------------------------------------------------------------
STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.1em; }
h2 { font-size: 1.15em; margin-top: 1.8em; border-bottom: 1px solid #ddd; }
h3 { font-size: 1em; margin: 1.2em 0 0.3em; }
.sub { color: #666; margin-top: 0; }
.warn { color: #8a4b00; background: #fff4e0; padding: 0.4em 0.6em; }
table { border-collapse: collapse; margin: 0.4em 0; }
th, td { padding: 3px 10px; border-bottom: 1px solid #eee; text-align: left; vertical-align: top; }
th { background: #f6f6f6; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code, td.code { font-family: ui-monospace, monospace; font-size: 0.92em; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
.config { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 0 2em; }
footer { color: #888; margin-top: 3em; font-size: 0.9em; }
"""


def render(facts):
    """The report page for :func:`gather`'s ``facts``; every value is HTML-escaped."""
    record, metrics = facts["record"], facts["metrics"]
    arch, data = record.get("architecture", {}), record.get("dataset", {})
    training = record.get("training", {})
    title = f"{facts['name']}: {arch.get('name', '?')} on {data.get('name', '?')}"
    sub = [
        f"backend {training.get('backend', metrics.get('backend', '?'))}",
        f"{metrics.get('epochs', training.get('epochs', '?'))} epochs",
    ]
    if "seconds" in metrics:
        sub.append(f"{metrics['seconds']:.1f} s")
    if "total_params" in metrics:
        sub.append(parameters_trained(metrics, record))
    sub += [f"status {facts['status']}", f"created {record.get('created', '?')}"]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)} — kerastack report</title><style>{STYLE}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="sub">{_e(" · ".join(sub))}<br><code>{_e(facts["path"])}</code></p>',
        *(f'<p class="warn">warning: {_e(w)}</p>' for w in record.get("warnings") or ()),  # training's own
        "<h2>Metrics</h2>",
        _metrics_html(facts["metric_table"]),
        _plots_html(facts["plots"]),
        _exports_html(facts["exports"]),
        "<h2>Configuration</h2>",
        _config_html(record),
        _history_html(facts["history"]),
        f"<footer>kerastack {_e(package_version('kerastack') or '?')} · report written "
        f"{_e(time.strftime('%Y-%m-%d %H:%M:%S'))}</footer>",
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"


def _e(value):
    return html.escape(str(value), quote=True)


def _cell(value):
    if isinstance(value, float):
        text = f"{value:.4f}" if 1e-3 <= abs(value) < 1e4 or value == 0 else f"{value:.3e}"
        return f'<td class="num">{_e(text)}</td>'
    if isinstance(value, int) and not isinstance(value, bool):
        return f'<td class="num">{_e(f"{value:,}")}</td>'
    if value is None:
        return "<td>-</td>"
    if isinstance(value, (dict, list, tuple)):
        return f'<td class="code">{_e(json.dumps(value, default=str))}</td>'
    return f"<td>{_e(value)}</td>"


def _table(header, rows):
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _kv_table(pairs):
    body = "".join(f"<tr><th>{_e(k)}</th>{_cell(v)}</tr>" for k, v in pairs)
    return f"<table><tbody>{body}</tbody></table>"


def _metrics_html(table):
    if not table:
        return "<p>No metrics yet (metrics.json is written when training finishes).</p>"
    splits = [s for s, _ in SPLITS if any(s in row for row in table.values())]
    return _table(["metric", *splits], [[base, *[row.get(s) for s in splits]] for base, row in table.items()])


def _plots_html(plots):
    if not plots:
        return ""
    out = ["<h2>Plots</h2>"]
    for name, path in plots.items():
        data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
        out.append(f'<img alt="{_e(name)}" src="data:image/png;base64,{data}">')
    return "\n".join(out)


def _exports_html(exports):
    if not exports:
        return ""
    out = ["<h2>Exports</h2>"]
    for exporter, rows in exports.items():
        described = [r for r in rows if len(r) > 2]  # more than file and size: a model file
        rest = [r for r in rows if len(r) <= 2] if described else []
        keys = [k for k in (*FILE_KEYS, *RESULT_KEYS) if any(k in r for r in described)]
        out.append(f"<h3>{_e(exporter)}</h3>")
        out.append(
            _table(
                ["file", "size", *[LABELS.get(k, k) for k in keys]],
                [[r["file"], format_size(r["size_bytes"]), *[r.get(k) for k in keys]] for r in described or rows],
            )
        )
        if rest:
            listed = ", ".join(f"{r['file']} ({format_size(r['size_bytes'])})" for r in rest)
            out.append(f'<p class="sub">also: {_e(listed)}</p>')
    return "\n".join(out)


def _config_html(record):
    sections = []
    for key, label in (("architecture", "Architecture"), ("dataset", "Dataset")):
        entry = dict(record.get(key) or {})
        options = entry.pop("options", None)
        pairs = list(entry.items())
        what = "hyperparameters" if key == "architecture" else "options"
        pairs += list(options.items()) if options else [(what, "(defaults)")]
        sections.append((label, pairs))
    for key, label in (("spec", "Data"), ("training", "Training"), ("transfer", "Transfer")):
        if record.get(key):
            sections.append((label, list(record[key].items())))
    for key, label in (("plugins", "Plugins (--plugin)"), ("custom_modules", "Custom object modules")):
        if record.get(key):
            sections.append((label, [(str(i + 1), item) for i, item in enumerate(record[key])]))
    known = {
        "architecture",
        "dataset",
        "spec",
        "training",
        "transfer",
        "plugins",
        "custom_modules",
        "versions",
        "status",
        "created",
        "warnings",  # shown at the top
    }
    other = [(k, v) for k, v in record.items() if k not in known]
    if other:
        sections.append(("Other", other))
    if record.get("versions"):
        sections.append(("Versions", list(record["versions"].items())))
    body = "".join(f"<div><h3>{_e(label)}</h3>{_kv_table(pairs)}</div>" for label, pairs in sections)
    return f'<div class="config">{body}</div>'


def _history_html(history):
    if not history:
        return ""
    keys = list(dict.fromkeys(k for row in history for k in row))
    return (
        f"<details><summary>History ({len(history)} epochs)</summary>"
        f"{_table(keys, [[row.get(k) for k in keys] for row in history])}</details>"
    )
