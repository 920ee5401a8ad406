"""What a written .tflite is checked for, beyond converting: where an integer output clips a
regression model's predictions, and which ops compute in float inside an integer file.

**Output range.** A full-integer file's output tensor takes 256 values (int8) spread over the range
calibration saw: the model's outputs on ``calibration_samples`` training inputs. A regression
model's prediction beyond it comes out clipped to it, silently (measured: a sine series of mean 50
gave an int8 output range of [0, 62.25]; nothing above 62.25 can come out). ``io=float`` does not
help: the last op still computes into an int8 tensor, dequantized after it. The export compares the
range with the training targets, widened by ``OUTPUT_MARGIN`` of their span on each side, records
both in the file's model.json entry (``output_range``) and, where the range falls short, warns on
stderr and in the export report, naming the files and options that keep the output float.
"""

import sys

import numpy as np

from tflite.runner import TFLiteModel

OUTPUT_MARGIN = 0.05  # of the training targets' span, on each side: predictions a little beyond them
_last = {}  # the dataset last read, and its targets' range: one export writes several files


def training_targets(dataset, task):
    """``{"min", "max", "samples"}`` of the training targets of a task with values (``Task.continuous``:
    regression, forecasting; up to 2,048 of a streamed split), or None for other tasks and splits
    without numeric targets."""
    from core import as_arrays, is_pair, task_named

    if not task or not task_named(task).continuous:
        return None
    if _last.get("dataset") is dataset:
        return _last["range"]
    _, y = as_arrays(dataset.train, limit=None if is_pair(dataset.train) else 2048)
    found = None
    if y is not None and np.asarray(y).size and np.asarray(y).dtype.kind in "biuf":
        y = np.asarray(y, np.float64)
        if np.isfinite(y).all():
            found = {"min": float(y.min()), "max": float(y.max()), "samples": int(len(y))}
    _last.update(dataset=dataset, range=found)
    return found


def output_range(model: TFLiteModel, targets):
    """model.json's ``output_range`` of a file whose output an integer tensor makes, for a
    regression model (``targets``: ``training_targets``): ``{"limits", "targets", "margin",
    "clipped"}``; None where the output is float or there are no targets."""
    limits = model.output_limits
    if limits is None or targets is None:
        return None
    low, high = targets["min"], targets["max"]
    margin = OUTPUT_MARGIN * max(high - low, 1e-12)
    clipped = limits[0] > low - margin or limits[1] < high + margin
    return {"limits": list(limits), "targets": [low, high], "margin": margin, "clipped": bool(clipped)}


def clipping_text(name, checked):
    """One line on a file whose integer output does not cover the training targets (``checked``:
    its ``output_range``); None where it does."""
    if not checked or not checked.get("clipped"):
        return None
    (lo, hi), (t_lo, t_hi), m = checked["limits"], checked["targets"], checked["margin"]
    keep = f"keep_float={checked.get('output_layer') or 'LAYER'} io=float"
    return (
        f"{name}: its integer output covers [{lo:.6g}, {hi:.6g}], the range calibration saw; the training "
        f"targets span [{t_lo:.6g}, {t_hi:.6g}] (± {m:.3g}, {OUTPUT_MARGIN:.0%} of it): predictions beyond "
        f"[{lo:.6g}, {hi:.6g}] come out clipped to it. Float outputs clip nothing: quantize=dynamic (int8 weights, "
        "float activations), "
        f"or {keep} (the output layer float; earlier layers still clip at their calibrated ranges)"
    )


def warn(text):
    """One line on stderr: ``kerastack: warning: exporter 'tflite': TEXT``."""
    print(f"kerastack: warning: exporter 'tflite': {text}", file=sys.stderr)
