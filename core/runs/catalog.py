"""Reading many run directories at once: finding them, summarizing each, lining their settings up.

Shared by ``kerastack runs``, ``kerastack compare`` and ``kerastack report``. Nothing here loads a
model: a run is read from its ``run.json``, ``metrics.json`` and ``history.csv`` only.
"""

import os
from datetime import datetime
from pathlib import Path

from core.errors import KerastackError
from core.runs.lock import writer_gone
from core.runs.run import MODEL_FILE, RUN_FILE, load_run
from core.task import task_named

# The metric a run is judged by, in order of preference: the first one its metrics.json has.
KEY_METRICS = ("accuracy", "mae", "mse", "loss")
# Metrics where a smaller value is better; any other known metric is better when larger.
LOWER_IS_BETTER = ("loss", "mae", "mse", "rmse", "smape", "error", "seconds")
HIGHER_IS_BETTER = ("accuracy", "auc", "precision", "recall", "f1", "agreement", "iou", "dice", "r2", "map")
# Keys of metrics.json that are settings or bookkeeping, not measurements of the model.
NOT_METRICS = ("backend", "epochs")
MAX_DEPTH = 3  # runs/ARCH-DATA-TIME is depth 1; sweeps nest a level or two deeper
# MLflow's artifact store beside the runs (--track mlflow): copies of run files, not runs.
MLFLOW_ARTIFACTS = "mlartifacts"


def list_runs(root):
    """:func:`summarize` of every run directory at or under ``root``, newest first."""
    return sorted((summarize(p) for p in find_runs(root)), key=_created, reverse=True)


def find_runs(root):
    """Run directories (holding ``run.json``) at or under ``root``, in name order.

    A run directory is not searched further: what lies inside it (``export/``) is not a run.
    """
    root = Path(root)
    if not root.is_dir():
        raise KerastackError(f"{root}: no such directory")
    found = []
    for here, dirs, files in os.walk(root):
        depth = len(Path(here).relative_to(root).parts)
        if RUN_FILE in files:
            found.append(Path(here))
            dirs[:] = []
        elif depth >= MAX_DEPTH:
            dirs[:] = []
        else:
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != MLFLOW_ARTIFACTS)
    return found


def summarize(path):
    """What ``kerastack runs`` shows of one run directory, as a JSON-able dict.

    An unreadable ``run.json`` gives ``status: "unreadable"`` and the error, rather than raising:
    one broken run must not hide the others.
    """
    path = Path(path)
    try:
        run = load_run(path)
    except KerastackError as exc:
        return {"name": path.name, "path": str(path), "status": "unreadable", "error": str(exc)}
    record, metrics = run.record, run.metrics
    if not metrics and run.history:  # still training (or stopped): the last finished epoch
        metrics = {k: v for k, v in run.history[-1].items() if k != "epoch"}
    training = record.get("training", {})
    planned = training.get("epochs")
    done = metrics.get("epochs", len(run.history) or None)
    key = key_metric(metrics, record.get("spec", {}).get("task"))
    return {
        "name": path.name,
        "path": str(path),
        "created": record.get("created"),
        "status": status_of(run),
        "architecture": record.get("architecture", {}).get("name"),
        "dataset": record.get("dataset", {}).get("name"),
        "task": record.get("spec", {}).get("task"),
        "backend": training.get("backend") or metrics.get("backend"),
        "epochs": done,
        "planned_epochs": planned,
        "key_metric": key,
        "val": metrics.get(f"val_{key}") if key else None,
        "test": metrics.get(f"test_{key}") if key else None,
        "metrics": {k: v for k, v in metrics.items() if k not in NOT_METRICS},
        "mlflow_run_id": (record.get("tracking") or {}).get("run_id"),
    }


def status_of(run):
    """``complete``, ``running``, ``interrupted`` (Ctrl-C, SIGTERM, or killed: "running" in the
    record, and its lock names a process that is gone; ``kerastack train --resume`` continues it),
    ``failed``, or ``no model``."""
    status = run.record.get("status")
    if status == "complete" and not (run.path / MODEL_FILE).exists():
        return "no model"
    if status == "running" and writer_gone(run.path):
        return "interrupted"
    return status or ("complete" if (run.path / MODEL_FILE).exists() else "unknown")


def key_metric(metrics, task=None):
    """The base name (``accuracy``, ``mae``, ...) of the metric the run is judged by, or None: its
    task's (``Task.metric``, e.g. ``mean_iou``) where the run has it, else the first of ``KEY_METRICS``."""
    names = KEY_METRICS
    known = task_named(task, optional=True)  # a task no plugin registers now: judged by its metrics
    if known is not None and known.metric:
        names = (known.metric[0], *KEY_METRICS)
    for name in names:
        if any(f"{split}{name}" in metrics for split in ("val_", "test_", "")):
            return name
    return None


def better(name):
    """``"higher"``, ``"lower"`` or None: which way ``name`` (e.g. ``val_loss``) improves."""
    base = name.split("_", 1)[1] if name.startswith(("val_", "test_")) else name
    if any(word in base for word in LOWER_IS_BETTER):
        return "lower"
    if any(word in base for word in HIGHER_IS_BETTER):
        return "higher"
    return None


def flatten(record, prefix=""):
    """``run.json`` as ``{"training.epochs": 10, "architecture.options.units": 32, ...}``.

    Lists become comma-separated text, so that two records line up key by key.
    """
    out = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + ".") if value else {name: "{}"})
        elif isinstance(value, (list, tuple)):
            out[name] = ",".join(str(v) for v in value) if value else "[]"
        else:
            out[name] = value
    return out


def compare(paths, everything=False):
    """Runs side by side: ``{"runs": [...], "settings": {key: [value per run]}, "metrics": {...}}``.

    ``settings`` holds the ``run.json`` keys whose values differ between the runs (all of them with
    ``everything``); ``created``, ``status`` and ``tracking`` (an MLflow run id each) are left out,
    being different by nature.
    """
    runs = [load_run(p) for p in paths]
    flat = [flatten({k: v for k, v in r.record.items() if k not in ("created", "status", "tracking")}) for r in runs]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    settings = {k: [f.get(k) for f in flat] for k in keys}
    if not everything:
        settings = {k: v for k, v in settings.items() if len({repr(x) for x in v}) > 1}
    metric_keys = list(dict.fromkeys(k for r in runs for k in r.metrics if k not in NOT_METRICS))
    metrics = {k: [r.metrics.get(k) for r in runs] for k in _metric_order(metric_keys)}
    return {
        "runs": run_names(runs),
        "paths": [str(r.path) for r in runs],
        "status": [status_of(r) for r in runs],
        "settings": settings,
        "metrics": metrics,
    }


def parameters_trained(metrics, record):
    """``"195 of 9,091 parameters trained"``; after ``--fine-tune-after N``, with how many trained
    from epoch N + 1: ``"195 of 9,091 parameters trained, 9,091 from epoch 2"``."""
    text = f"{metrics.get('trainable_params', 0):,} of {metrics.get('total_params', 0):,} parameters trained"
    after = (record.get("transfer") or {}).get("fine_tune_after")
    if "fine_tuned_params" in metrics and after:
        text += f", {metrics['fine_tuned_params']:,} from epoch {after + 1}"
    return text


def run_names(runs):
    """Short names for runs shown side by side: the directory names, or the paths where those clash."""
    names = [r.path.name for r in runs]
    return names if len(set(names)) == len(names) else [str(r.path) for r in runs]


def _metric_order(keys):
    """Measurements first (train, val, test of each metric), then time and parameter counts."""
    tail = [k for k in keys if k in ("seconds", "trainable_params", "fine_tuned_params", "total_params")]
    head = [k for k in keys if k not in tail]
    bases = list(dict.fromkeys(k.split("_", 1)[1] if k.startswith(("val_", "test_")) else k for k in head))
    ordered = [f"{split}{b}" for b in bases for split in ("", "val_", "test_") if f"{split}{b}" in head]
    return ordered + tail


def _created(summary):
    """When a run was made: ``created`` from run.json, else the record's modification time."""
    try:
        return datetime.strptime(summary["created"], "%Y-%m-%dT%H:%M:%S%z").timestamp()
    except (KeyError, TypeError, ValueError):
        try:
            return (Path(summary["path"]) / RUN_FILE).stat().st_mtime
        except OSError:
            return 0.0
