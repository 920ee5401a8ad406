"""Pictures of a run: learning curves from ``history.csv`` and, for classification, a confusion matrix.

matplotlib is imported inside the functions, and only its object API is used (``Figure`` with an
Agg canvas, never ``pyplot``): no global backend is switched, so plotting from a notebook or a
training process leaves the caller's matplotlib state alone.
"""

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.errors import KerastackError
from core.files import StrPath, atomic_path
from core.runs.run import load_run
from core.task import task_named

if TYPE_CHECKING:
    from matplotlib.figure import Figure

CURVES_FILE = "curves.png"
CONFUSION_FILE = "confusion.png"
PREDICTIONS_FILE = "predictions.npz"
DPI = 110
ANNOTATE_MAX_CLASSES = 20  # above this, cells are too small for their counts
LABEL_MAX_CLASSES = 40  # above this, tick labels overlap; the axes show indexes


def write_run_plots(run_dir):
    """Write ``curves.png`` and, where the run saved ``predictions.npz``, ``confusion.png``.

    ``predictions.npz`` holds ``y_true`` and ``y_pred`` (integer class ids of the same length) and
    optionally ``split`` (the split's name, a string). Returns the paths written: none for a run
    without history yet.
    """
    run = load_run(run_dir)
    written = []
    if run.history:
        written.append(plot_curves(run.history, run.path / CURVES_FILE, title=_title(run)))
    predictions = run.path / PREDICTIONS_FILE
    spec = run.record.get("spec", {})
    task = task_named(spec.get("task", "classification"), optional=True)
    if predictions.exists() and task is not None and task.classes:
        y_true, y_pred, split = read_predictions(predictions)
        written.append(
            plot_confusion(
                y_true,
                y_pred,
                run.path / CONFUSION_FILE,
                class_names=spec.get("class_names"),
                num_classes=spec.get("num_classes"),
                title=f"{_title(run)} — {split} split" if split else _title(run),
                unit=task.unit,
            )
        )
    return written


def read_predictions(path):
    """``(y_true, y_pred, split or None)`` from a ``predictions.npz``; probabilities become class ids."""
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in ("y_true", "y_pred") if k not in data.files]
            if missing:
                raise KerastackError(f"{path}: missing array {missing[0]!r} (expected y_true and y_pred)")
            y_true, y_pred = np.asarray(data["y_true"]), np.asarray(data["y_pred"])
            split = str(data["split"]) if "split" in data.files else None
    except (OSError, ValueError) as exc:
        raise KerastackError(f"{path}: unreadable predictions: {exc}") from None
    if y_pred.ndim == 2:
        y_pred = y_pred.argmax(-1)
    y_true, y_pred = y_true.reshape(-1).astype(int), y_pred.reshape(-1).astype(int)
    if min(y_true.min(initial=0), y_pred.min(initial=0)) < 0:
        raise KerastackError(f"{path}: class ids must not be negative")
    if len(y_true) != len(y_pred):
        raise KerastackError(f"{path}: y_true has {len(y_true)} labels but y_pred has {len(y_pred)}")
    return y_true, y_pred, split


def plot_curves(history, path, title=""):
    """One panel per metric (loss first), training and validation against the epoch."""
    figure = new_figure()
    epochs = [row.get("epoch", i + 1) for i, row in enumerate(history)]
    keys = list(dict.fromkeys(k for row in history for k in row))
    bases = [k for k in keys if k != "epoch" and not k.startswith("val_")]
    bases += [k[4:] for k in keys if k.startswith("val_") and k[4:] not in bases]  # val-only metrics
    bases.sort(key=lambda k: (k != "loss", keys.index(k) if k in keys else len(keys)))
    columns = min(len(bases), 3) or 1
    rows = -(-len(bases) // columns) or 1
    figure.set_size_inches(4.2 * columns, 3.2 * rows + 0.5)
    marker = "o" if len(epochs) <= 30 else None
    for i, base in enumerate(bases):
        ax = figure.add_subplot(rows, columns, i + 1)
        for key, label, style in ((base, "train", "-"), (f"val_{base}", "validation", "--")):
            values = [_float(row.get(key)) for row in history]
            if any(v is not None for v in values):
                ax.plot(
                    epochs,
                    [np.nan if v is None else v for v in values],
                    style,
                    marker=marker,
                    markersize=3,
                    label=label,
                )
        ax.set_title(base)
        ax.set_xlabel("epoch")
        ax.grid(True, alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
        if ax.lines:
            ax.legend(fontsize="small")
        else:
            ax.text(0.5, 0.5, "no finite values", ha="center", va="center", transform=ax.transAxes)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return save_figure(figure, path)


def plot_confusion(y_true, y_pred, path, class_names=None, num_classes=None, title="", unit="sample"):
    """Counts of (true class, predicted class) of each ``unit`` (a sample, or a pixel of a mask); the
    colour is each row's share (the class's recall)."""
    seen = int(max(y_true.max(initial=-1), y_pred.max(initial=-1))) + 1
    n = max(int(num_classes or 0), len(class_names or ()), seen)
    matrix = np.zeros((n, n), dtype=int)
    np.add.at(matrix, (y_true, y_pred), 1)
    share = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    labels = list(class_names) if class_names and len(class_names) == n else [str(i) for i in range(n)]
    figure = new_figure()
    side = min(3.5 + 0.38 * n, 12)
    figure.set_size_inches(side + 1.2, side)
    ax = figure.add_subplot(1, 1, 1)
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    if n <= LABEL_MAX_CLASSES:
        long = max(map(len, labels)) > 2
        ax.set_xticks(range(n), labels, rotation=45 if long else 0, ha="right" if long else "center")
        ax.set_yticks(range(n), labels)
    if n <= ANNOTATE_MAX_CLASSES:
        for (i, j), count in np.ndenumerate(matrix):
            if count:
                ax.text(
                    j,
                    i,
                    str(count),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if share[i, j] > 0.6 else "black",
                )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    accuracy = float(np.mean(y_true == y_pred)) if len(y_true) else float("nan")
    counted = f"{unit} accuracy {accuracy:.4f}, n={len(y_true):,} {unit}s" if unit != "sample" else None
    counted = counted or f"accuracy {accuracy:.4f}, n={len(y_true)}"
    ax.set_title(f"{title}\n{counted}" if title else counted, fontsize=10)
    figure.tight_layout()
    return save_figure(figure, path)


def new_figure() -> "Figure":
    """A matplotlib ``Figure`` drawn with Agg, made without ``pyplot``: the caller's matplotlib state
    (its default backend, its open figures) is left alone. Save it with ``save_figure``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure()
    FigureCanvasAgg(figure)  # attaches itself: savefig renders with Agg whatever the default backend
    return figure


def save_figure(figure: "Figure", path: StrPath) -> Path:
    """Write ``figure`` to ``path`` as a PNG whole or not at all (see ``atomic_path``); return ``path``."""
    path = Path(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=DPI)
    return path


def _title(run):
    r = run.record
    arch, data = r.get("architecture", {}).get("name", "?"), r.get("dataset", {}).get("name", "?")
    return f"{run.path.name}: {arch} on {data} ({run.backend or '?'})"


def _float(value):
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) else None
