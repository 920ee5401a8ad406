"""Trainings that cannot learn, told as such: refused at the start where the settings say so, warned
about at the end where the model shows it.

Issue 23: a random backbone with frozen BatchNorm gave features of 1e-10, so the classifier's output
was the same for every sample: loss ln 3 and accuracy 1/3 in every epoch, and train, export and verify
all passed without a word. ``--hp weights=none --freeze backbone`` does that with no file at all.
"""

import numpy as np

from core.errors import UsageError

# Outputs that differ over a split by at most this (relative to their size, at least 1) are constant:
# a model that sees its inputs moves its probabilities by more than 1e-4 between two samples.
CONSTANT_SPREAD = 1e-4


def check_frozen_backbone(arch, hparams, freeze, init_from):
    """Refuse ``--freeze backbone`` on a backbone whose weights are random (``--hp weights=none``)
    and come from no other run (``--init-from``): frozen at random, its features carry nothing that a
    head could learn from, and the run ends at chance level with constant outputs. There is no use
    for it that ``--freeze none`` (train everything) does not serve."""
    weights = hparams.get("weights")
    if freeze != "backbone" or init_from is not None or not isinstance(weights, str) or weights.lower() != "none":
        return
    raise UsageError(
        f"--freeze backbone with --hp weights=none: architecture {arch!r} would train a head on a random, "
        "frozen backbone, whose features carry nothing to learn from; use --hp weights=imagenet or "
        "weights=FILE, --init-from RUN, or --freeze none"
    )


class OutputSpread:
    """How far a model's outputs move over a split, taken batch by batch (a streamed split is never
    all in memory): per output value, the least and the greatest over the samples."""

    def __init__(self):
        self.low = self.high = None
        self.samples = 0

    def add(self, outputs):
        out = np.asarray(outputs, dtype="float64").reshape(len(outputs), -1)
        if not len(out):
            return
        low, high = out.min(axis=0), out.max(axis=0)
        self.low = low if self.low is None else np.minimum(self.low, low)
        self.high = high if self.high is None else np.maximum(self.high, high)
        self.samples += len(out)

    @property
    def spread(self):
        """The most any output value moves between two samples (0 before two are seen)."""
        return 0.0 if self.low is None else float(np.max(self.high - self.low))

    def constant(self):
        """Whether the outputs are (nearly) the same for every sample, over two samples or more."""
        if self.samples < 2 or not np.all(np.isfinite(self.high)):
            return False
        size = max(1.0, float(np.max(np.abs(np.concatenate([self.low, self.high])))))
        return self.spread <= CONSTANT_SPREAD * size


def constant_outputs_warning(spread, y_true, y_pred, split, class_names=None):
    """The warning (one line) for a classifier whose outputs on the ``split`` split are constant:
    what it predicts, and that its accuracy is only that class's share; None if they are not."""
    if not spread.constant():
        return None
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    predicted = int(np.bincount(y_pred).argmax())
    name = class_names[predicted] if class_names and predicted < len(class_names) else predicted
    accuracy = float(np.mean(y_true == y_pred))
    return (
        f"the model's outputs are constant: the same for all {spread.samples:,} {split} samples (they differ by "
        f"at most {spread.spread:.1g}), class {name!r} for every one, accuracy {accuracy:.3f} (that class's "
        "share): it learned nothing from its inputs (a frozen random backbone? dead units? a learning rate "
        "far too high?)"
    )
