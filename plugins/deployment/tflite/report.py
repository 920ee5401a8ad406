"""``write_export_report()``: every .tflite variant of a run beside the Keras model it came from.

One row per file: size, gzip size (what a download or an OTA update costs), the task metric on the
run's evaluation split, agreement and max abs diff with Keras, LiteRT latency at each thread count.
Every number of a .tflite row comes from ``verify()``, the same code as ``kerastack verify``; the
first thread count's results are also recorded in ``verify.json``.
"""

from pathlib import Path

import numpy as np

from core import KerastackError, format_size, gzip_size, keras_latency, keras_weights, write_text

REPORT_MD = "report.md"
REPORT_PNG = "report.png"
# How a task's metric (``Task.metric``) is shown where its name is not: abbreviations.
LABELS = {
    "mae": "MAE",
    "mse": "MSE",
    "rmse": "RMSE",
    "smape": "sMAPE",
    "r2": "R²",
    "mean_iou": "mean IoU",
    "map50": "mAP@0.5",
}
KERAS_ROW = "keras weights"


def write_export_report(run_dir, files, threads=(1, 2), *, latency_runs=200):
    """Verify each .tflite among ``files`` at every thread count; write ``report.md`` and
    ``report.png`` beside them. Returns ``[report.md, report.png]``.

    Files that are not .tflite (model.json, labels.txt: what ``export`` returns too) are skipped.
    The Keras row is the run's model: its metric, the size of its weights (float32, as exported:
    ``model.keras`` also holds the optimizer's state, which no deployed file carries) and the latency
    of a single-sample ``predict_on_batch`` in this process's backend. Below the table, what each
    file's model.json and verify say a user must know: float ops inside an integer file, an integer
    output that clips a regression model's predictions, Keras outputs that are constant.
    """
    from core import verify

    threads = tuple(int(t) for t in threads)
    if not threads or min(threads) < 1:
        raise KerastackError(f"export report: thread counts must be positive integers, got {threads!r}")
    lite = sorted({Path(f) for f in files if Path(f).suffix == ".tflite"}, key=lambda p: p.name)
    if not lite:
        raise KerastackError(f"export report: no .tflite file among {[str(f) for f in files]}")
    folders = {p.parent.resolve() for p in lite}
    if len(folders) > 1:
        raise KerastackError(
            f"export report: the .tflite files lie in {len(folders)} folders; give the files of one export folder"
        )
    rows, every, task = [], [], _run_task(run_dir)
    for path in lite:
        # The first thread count is the one recorded in verify.json (kerastack verify's default, 1).
        results = {
            t: verify(path, run_dir, threads=t, latency_runs=latency_runs, record=i == 0) for i, t in enumerate(threads)
        }
        rows.append(_tflite_row(path, results, task))
        every.append(results)
    first = results[threads[0]]
    rows.insert(0, _keras_row(run_dir, first, latency_runs, task))
    folder = lite[0].parent
    facts = _facts(run_dir, first, threads)
    layers = recorded_layers(folder, [p.name for p in lite])
    notes = file_notes(folder, {p.name: r[threads[0]] for p, r in zip(lite, every)})
    runtimes = render_runtimes(_entries(folder, [p.name for p in lite]))
    md = write_text(
        folder / REPORT_MD, render_markdown(rows, threads, task, facts, notes) + render_layers(layers) + runtimes
    )
    png = plot_report(rows, threads, task, folder / REPORT_PNG, title=facts["title"], layers=layers)
    return [md, png]


def recorded_layers(folder, names):
    """``{file name: its model.json entry}`` for the files that have per-layer errors (or failed to)."""
    from core import read_json

    meta_path = Path(folder) / "model.json"
    files = (read_json(meta_path, "metadata file").get("files") or {}) if meta_path.exists() else {}
    return {n: files[n] for n in names if isinstance(files.get(n), dict) and _has_layers(files[n])}


def _entries(folder, names):
    """``{file name: its model.json entry}`` for ``names`` (those it lists)."""
    from core import read_json

    meta_path = Path(folder) / "model.json"
    files = (read_json(meta_path, "metadata file").get("files") or {}) if meta_path.exists() else {}
    return {n: files[n] for n in names if isinstance(files.get(n), dict)}


RUNTIME_NOTE = (
    "Oldest runtime: TensorFlow's own table of the first runtime with each (op, version) "
    "(`tflite::FindMinimumRuntimeVersionForOp`, from which the converter writes a file's "
    "`min_runtime_version`), over this file's ops. The table is kept by hand: a pair it lacks (—) is "
    "left out of the minimum, which is then only a lower bound. Measured with tflite-runtime 2.14.0 "
    "(bench/compat.md): it ran every file the table puts at 2.14 or below, and refused the one it puts "
    "above (a `quantize=dynamic` file: FULLY_CONNECTED v12, 2.17.0), naming that op and version. A "
    "device whose runtime is older than the minimum will not load the file."
)


def render_runtimes(entries):
    """A section: each file's ops with their versions and the oldest runtime that has each, then the
    file's minimum. Files exported before op versions were recorded are left out."""
    out = []
    for name, entry in entries.items():
        versions = entry.get("op_versions")
        if not versions:
            continue
        runtime = entry.get("runtime") or {}
        table = runtime.get("ops") or {}
        ops = ", ".join(
            f"{op} v{v}" + (f" ({table.get(f'{op} v{v}') or '—'})" if runtime else "")
            for op, vs in versions.items()
            for v in vs
        )
        least = runtime.get("min_runtime") or "not known"
        out.append(f"| `{name}` | {ops} | {least if runtime else 'no table here'} |")
    if not out:
        return ""
    head = [
        "",
        "## Ops, versions and the oldest runtime",
        "",
        "| file | op version (oldest runtime) | file's minimum |",
    ]
    return "\n".join(head + ["|---|---|---|"] + out + ["", RUNTIME_NOTE]) + "\n"


def file_notes(folder, results):
    """``{file name: [one line each]}``: what model.json (``float_ops``, ``output_range``, a
    ``keep_float=auto`` that kept no layer) and verify (``results``: clipped outputs, constant
    outputs) say of each file that its row cannot show."""
    from core import read_json

    meta_path = Path(folder) / "model.json"
    files = (read_json(meta_path, "metadata file").get("files") or {}) if meta_path.exists() else {}
    notes = {}
    for name, result in results.items():
        entry = files.get(name) if isinstance(files.get(name), dict) else {}
        found = list(result.get("warnings", ())) + _entry_notes(name, entry, result)
        if found:
            notes[name] = found
    return notes


def _entry_notes(name, entry, result):
    from plugins.deployment.tflite.checks import clipping_text

    found = []
    if entry.get("float_ops"):
        ops = ", ".join(f"{op} ×{n}" for op, n in sorted(entry["float_ops"].items()))
        why = "the layers kept float" if entry.get("mixed") else "ops without an int8 kernel here"
        found.append(
            f"float ops inside the integer file: {ops} ({why}, each between a DEQUANTIZE and a QUANTIZE: "
            "they compute in float32, on the CPU)"
        )
    clipping = clipping_text(name, entry.get("output_range"))
    if clipping:
        clipped = result.get("clipped_outputs", 0)
        found.append(
            f"{clipping.split(': ', 1)[1]}. Here {clipped} outputs of the {result['split']} split came out clipped."
        )
    if isinstance(entry.get("keep_float"), dict):
        found.append(
            f"keep_float=auto kept no layer float, so this is the plain int8 model: {entry['keep_float']['why']}"
        )
    return found


def _has_layers(entry):
    return "layer_errors" in entry or "layer_errors_error" in entry


def render_layers(layers):
    """A section per int8/int16x8 file: the Keras layers worst first; what a mixed model kept float."""
    from core import format_layer_errors

    out = []
    for name, entry in layers.items():
        out += ["", f"## Per-layer quantization error — `{name}`", ""]
        if "layer_errors" not in entry:
            out.append(f"Not measured: {entry['layer_errors_error']}")
            continue
        mixed = entry.get("mixed")
        if mixed:
            out += [_mixed_text(mixed), ""]
        out.append(format_layer_errors(entry["layer_errors"], markdown=True).rstrip())
        flagged = [r["layer"] for r in entry["layer_errors"] if r.get("flagged")]
        if flagged:
            out += [
                "",
                f"Flagged: {', '.join(f'`{f}`' for f in flagged)}. To keep layers float: `--opt keep_float=auto`, "
                "or name them: `keep_float=LAYER,...`.",
            ]
    return "\n".join(out) + ("\n" if out else "")


def _mixed_text(mixed):
    kept = ", ".join(f"`{n}`" for n in mixed["float_layers"]) or "none"
    steps = " → ".join(f"{'+'.join(s['float_layers']) or 'all int8'} {s['metric']:.4f}" for s in mixed.get("steps", []))
    return (
        f"Kept float (`keep_float={mixed['keep_float']}`): {kept}. Int8: {mixed['int8_ops']:.0%} of "
        f"{mixed['ops']} ops, {mixed['int8_weights']:.0%} of {mixed['weights']:,} weights. "
        f"On {mixed['split']}, {mixed['metric']}: float {mixed['float_metric']:.4f}, all int8 "
        f"{mixed['all_int8_metric']:.4f}, mixed {mixed['mixed_metric']:.4f}. Tried: {steps}. "
        "The table below is the mixed model's int8 layers."
    )


def write_folder_report(run_dir, out_dir):
    """``write_export_report`` for every .tflite in ``out_dir`` (the exporter's ``report=``)."""
    files = sorted(p for p in Path(out_dir).glob("*.tflite") if not p.name.startswith("."))  # ".": partial
    return write_export_report(run_dir, files)


# -- rows ------------------------------------------------------------------------------------------
def _tflite_row(path, results, task):
    first = next(iter(results.values()))
    key = _shown(task)[0]
    return {
        "name": path.name,
        "size_bytes": first["size_bytes"],
        "gzip_bytes": gzip_size(path),
        "metric": first.get(f"tflite_{key}"),
        "agreement": first.get("agreement"),
        "max_abs_diff": first["max_abs_diff"],
        "latency": {t: (r["latency_ms_p50"], r["latency_ms_p90"]) for t, r in results.items()},
    }


def _keras_row(run_dir, result, runs, task):
    key = _shown(task)[0]
    p50, p90 = keras_latency(run_dir, runs)
    weights = keras_weights(run_dir)
    return {
        "name": KERAS_ROW,
        "size_bytes": weights["bytes"],
        "gzip_bytes": weights["gzip_bytes"],
        "parameters": weights["parameters"],
        "metric": result.get(f"keras_{key}"),
        "agreement": None,
        "max_abs_diff": None,
        "latency": {"keras": (p50, p90)},
    }


def _run_task(run_dir):
    """The run's task (``core.Task``), or None where its plugin is gone."""
    from core import load_run, task_named

    return task_named(load_run(run_dir).record.get("spec", {}).get("task") or "", optional=True)


def _shown(task):
    """``(key, label, higher is better)`` of the task's metric; ``key`` None where it has none."""
    if task is None or task.metric is None:
        return None, "metric", True
    key, higher = task.metric
    return key, LABELS.get(key, key.replace("_", " ")), higher


def _facts(run_dir, result, threads):
    from core import load_run, loaded_backend

    run = load_run(run_dir)
    r = run.record
    arch, data = r.get("architecture", {}).get("name", "?"), r.get("dataset", {}).get("name", "?")
    return {
        "title": f"{run.path.name}: {arch} on {data}",
        "model_keras_bytes": run.model_path.stat().st_size,
        "split": result["split"],
        "samples": result["samples"],
        "backend": loaded_backend() or run.backend,
        "threads": threads,
    }


# -- markdown --------------------------------------------------------------------------------------
def render_markdown(rows, threads, task, facts, notes=None):
    """The report as a Markdown table, one row per model, Keras first; then ``notes`` (``file_notes``)."""
    key, label, higher = _shown(task)
    head = ["model", "size", "gzip", label if key else "metric", "agreement", "max abs diff"]
    head += [f"p50 / p90 ms, {t} thread{'s' if t != 1 else ''}" for t in threads]
    lines = [
        f"# Export report — {facts['title']}",
        "",
        f"{facts['split'].capitalize()} split, {facts['samples']} samples. Latency: single-sample "
        f"invocations on LiteRT; the Keras row is `predict_on_batch` of one sample under "
        f"{facts['backend']}, with its own thread pool (†).",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|",
    ]
    for row in rows:
        cells = [
            f"`{row['name']}`",
            format_size(row["size_bytes"], "KiB"),
            format_size(row["gzip_bytes"], "KiB"),
            _num(row["metric"], ".4f"),
            _num(row["agreement"], ".4f"),
            _num(row["max_abs_diff"], ".3g"),
        ]
        if row["name"] == KERAS_ROW:
            p50, p90 = row["latency"]["keras"]
            cells += [f"{p50:.3g} / {p90:.3g} †"] + ["—"] * (len(threads) - 1)
        else:
            cells += [f"{row['latency'][t][0]:.3g} / {row['latency'][t][1]:.3g}" for t in threads]
        lines.append("| " + " | ".join(cells) + " |")
    legend = [
        f"{KERAS_ROW}: the Keras model's weights ({rows[0]['parameters']:,} parameters, float32), what the "
        f"files are made from (`model.keras` is {format_size(facts['model_keras_bytes'], 'KiB')}: it also "
        "holds the optimizer's state)."
    ]
    legend += [f"{label}: {'higher' if higher else 'lower'} is better."] if key else []
    if any(row["agreement"] is not None for row in rows):
        if task.agreement:
            agree = task.agreement
        elif task.classes:
            agree = f"{task.unit}s whose top-1 class is Keras's"
        else:
            agree = "outputs read alike (the task's rule)"
        legend.append(f"agreement: the share of {agree}.")
    legend.append("max abs diff: the largest difference from Keras's outputs (dequantized for int8 models).")
    warned = [f"- `{name}`: {line}" for name, found in (notes or {}).items() for line in found]
    return "\n".join(lines + [""] + legend + (["", "**Warnings**", ""] + warned if warned else [])) + "\n"


def _num(value, spec):
    return "—" if value is None else format(value, spec)


# -- picture ---------------------------------------------------------------------------------------
def plot_report(rows, threads, task, path, title="", layers=None):
    """Size against the metric (left) and latency p50 with a p90 whisker per thread count (right);
    below, where int8/int16x8 files have per-layer errors, each Keras layer's worst-channel SNR."""
    from core import new_figure, save_figure

    measured = {n: e["layer_errors"] for n, e in (layers or {}).items() if e.get("layer_errors")}
    figure = new_figure()
    figure.set_size_inches(11, 8.4 if measured else 4.2)
    grid = 2 if measured else 1
    names = [_short(r["name"]) for r in rows]
    _plot_size_vs_metric(figure.add_subplot(grid, 2, 1), rows, names, task)
    _plot_latency(figure.add_subplot(grid, 2, 2), rows, names, threads)
    if measured:
        _plot_layers(figure.add_subplot(2, 1, 2), measured)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return save_figure(figure, path)


def _plot_size_vs_metric(axes, rows, names, task):
    """One point per model (a vertical line where there is no task metric)."""
    key, label, higher = _shown(task)
    for i, (row, name) in enumerate(zip(rows, names)):
        size, color = row["size_bytes"] / 1024, "tab:gray" if row["name"] == KERAS_ROW else "tab:purple"
        if row["metric"] is not None:
            axes.scatter(size, row["metric"], s=60, color=color, zorder=3)
            axes.annotate(
                name, (size, row["metric"]), textcoords="offset points", fontsize=9, xytext=(6, 5 if i % 2 else -12)
            )  # alternate: close sizes do not overprint
        else:
            axes.axvline(size, color=color, alpha=0.5)
            axes.text(size, 0.5, f" {name}", transform=axes.get_xaxis_transform(), fontsize=9)
    axes.set_xlabel("size (KiB)")
    axes.set_ylabel(f"{label} ({'higher' if higher else 'lower'} is better)" if key else "no task metric")
    axes.set_title("size vs " + (label if key else "metric"))
    axes.grid(True, alpha=0.3)
    axes.margins(x=0.25, y=0.15)
    axes.set_xlim(left=0)


def _plot_latency(axes, rows, names, threads):
    """Horizontal bars, one group per model: Keras's, then LiteRT's at each thread count."""
    groups = [("keras", "Keras †")] + [(t, f"{t} thread{'s' if t != 1 else ''}") for t in threads]
    height = 0.8 / len(threads)
    for j, (t, legend) in enumerate(groups):
        ys, p50s, whiskers = [], [], []
        for i, row in enumerate(rows):
            if t not in row["latency"]:
                continue
            p50, p90 = row["latency"][t]
            offset = 0 if t == "keras" else (j - 1 - (len(threads) - 1) / 2) * height
            ys.append(i + offset)
            p50s.append(p50)
            whiskers.append(max(p90 - p50, 0))
        if ys:
            axes.barh(
                ys,
                p50s,
                height=height * 0.95,
                xerr=[np.zeros(len(ys)), whiskers],
                capsize=2,
                color="tab:gray" if t == "keras" else f"C{j - 1}",
                alpha=0.85,
                label=legend,
            )
    axes.set_yticks(range(len(rows)), names)
    axes.invert_yaxis()
    axes.set_xscale("log")
    axes.set_xlabel("latency per sample, ms (p50; whisker to p90)")
    axes.set_title("latency")
    axes.grid(True, axis="x", alpha=0.3)
    axes.legend(fontsize="small", loc="lower right")


def _short(name):
    return name.removeprefix("model_").removesuffix(".tflite")


def _plot_layers(axes, measured):
    """Worst-channel SNR per Keras layer (worst at the top), one marker series per file; flagged
    layers ringed red."""
    from plugins.deployment.tflite.layer_errors import FLAG_SNR_DB

    worst = {}
    measured = {n: [r for r in rows if not r.get("no_signal")] for n, rows in measured.items()}  # nothing to plot
    for rows in measured.values():
        for r in rows:
            worst[r["layer"]] = min(worst.get(r["layer"], r["snr_db"]), r["snr_db"])
    order = sorted(worst, key=worst.get)  # the worst in any file at the top
    for k, (name, rows) in enumerate(measured.items()):
        by = {r["layer"]: r for r in rows}
        ys = [i + (k - (len(measured) - 1) / 2) * 0.15 for i, n in enumerate(order) if n in by]
        snr = [by[n]["snr_db"] for n in order if n in by]
        axes.scatter(snr, ys, s=36, color=f"C{k}", label=_short(name), zorder=3)
        bad = [(v, y) for v, y, n in zip(snr, ys, [n for n in order if n in by]) if by[n].get("flagged")]
        if bad:
            axes.scatter(*zip(*bad), s=120, facecolors="none", edgecolors="tab:red", zorder=4)
    axes.axvline(FLAG_SNR_DB, color="tab:red", alpha=0.4, linestyle="--")
    axes.set_yticks(range(len(order)), order)
    axes.invert_yaxis()
    axes.set_xlabel("worst output channel's SNR, dB (quantized vs float activations; red: flagged)")
    axes.set_title("per-layer quantization error (Keras layers)")
    axes.grid(True, axis="x", alpha=0.3)
    axes.legend(fontsize="small", loc="lower right")
