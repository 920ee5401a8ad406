"""The task axis: what a model's outputs mean, and so how it is compiled, judged, saved and shown.

A task plugin registers a ``Task`` subclass (``register_tasks`` in ``core.hookspecs``); the built-in
ones (classification, regression, reconstruction, generation, segmentation, forecasting) live in
``plugins/tasks`` and register through the same hook. A dataset names its task (``Dataset.task``),
an architecture the tasks it builds for; the core then asks the task, never the task's name:

- training: which targets a split is fitted on (``targets``), the loss and metrics of a model the
  architecture left uncompiled (``loss``, ``metrics``), whether targets are values to standardize
  (``continuous``) or class ids to count (``classes``);
- judging: ``scorer()`` sums the task's metrics batch by batch, for Keras alone (``metrics.json``
  after training) or Keras beside another runtime (``verify``, export checks, the export report);
  ``metric`` names the one number a run is listed and compared by (``kerastack runs``, reports);
- deploying: ``deployed`` turns Keras's outputs into what an exported file returns (detection:
  the boxes its non-max suppression keeps), before they are scored, saved or compared;
- saving: ``predictions`` (``predictions.npz``: what the confusion matrix is drawn from when the
  task has ``classes``; ``unit`` says what it counts);
- the device: ``device`` says how ``python -m tflite`` shows an output (it reads it from the
  file's metadata; the device side knows these ways and nothing of plugins);
- apps' runtimes: ``output_metadata`` and ``output_groups`` say what the outputs are in the standard
  LiteRT metadata (``TFLITE_METADATA``) that MediaPipe Tasks and the LiteRT Task Library read.
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from core.errors import KerastackError, UsageError

DEVICE_OUTPUTS = ("classes", "mask", "values", "boxes", "raw")


class Scorer:
    """Running sums of a task's metrics over batches, so that a streamed split is never all in memory.

    ``add(x, y, keras_out, out=None)`` takes one batch: the inputs, the task's targets (``Task.targets``),
    Keras's outputs and, when another runtime is judged, its outputs on the same inputs. A subclass
    calls ``mean(name, keras_sum, other_sum, count)`` for a metric of each side (``keras_NAME`` and
    ``NAME`` for the other runtime, ``tflite_NAME`` in verify) and ``mean(name, None, sum, count)``
    for one that compares the two sides (``agreement``); or overrides ``result``. ``info`` holds the
    dataset's facts (``Dataset.info``), ``class_names`` the run's classes where it has them."""

    def __init__(
        self, task: "Task", info: Mapping[str, Any] | None = None, class_names: Sequence[str] | None = None
    ) -> None:
        self.task, self.info = task, dict(info or {})
        self.class_names = list(class_names) if class_names else None
        self.sums: dict[str, list[float]] = {}  # key → [sum, count]

    def add(self, x: np.ndarray, y: np.ndarray | None, keras_out: np.ndarray, out: np.ndarray | None = None) -> None:
        """Take one batch (the base task has no metric of its own)."""

    def mean(self, name: str, keras_sum: float | None, other_sum: float | None, count: int) -> None:
        for key, value in (("keras_" + name, keras_sum), (name, other_sum)):
            if value is not None:
                total = self.sums.setdefault(key, [0.0, 0])
                total[0] += float(value)
                total[1] += int(count)

    def result(self, runtime: str | None = None) -> dict[str, Any]:
        """The metrics so far: ``keras_NAME``, and the other runtime's as ``RUNTIME_NAME`` (``NAME``
        where ``runtime`` is None); a metric comparing both sides keeps its name (``agreement``)."""
        out = {}
        for key, (total, count) in self.sums.items():
            if not count:
                continue
            if not key.startswith("keras_") and runtime and f"keras_{key}" in self.sums:
                key_out = f"{runtime}_{key}"
            else:
                key_out = key
            out[key_out] = total / count
        return out

    def keras_result(self) -> dict[str, Any]:
        """Keras's own metrics (``keras_`` dropped): what ``metrics.json`` keeps for the split."""
        return {k.removeprefix("keras_"): v for k, v in self.result().items() if k.startswith("keras_")}


class Task:
    """One task. Subclass it, set what differs from these defaults, and register the class.

    ``supervised``: the model learns the dataset's targets; False (reconstruction, generation): it
    learns from the inputs, and an architecture for such a task trains on any dataset's inputs.
    ``classes``: targets are integer class ids (of a sample, or of each pixel); the core counts them
    into ``DataSpec.num_classes`` and checks their range. ``continuous``: targets are values in their
    own units; the core standardizes them on the train split (undone inside the model) and checks an
    integer output's range against them. ``loss`` and ``metrics``: what the core compiles a model
    with when its ``build`` did not (``loss`` None: the architecture must compile). ``metric``:
    ``(name, higher_is_better)`` of the number a run is judged by; a scorer sums ``keras_NAME``.
    ``unit``: what one prediction is (``"sample"``, ``"pixel"``). ``device``: one of
    ``DEVICE_OUTPUTS``, how the device runner shows an output. ``agreement``: what the scorer's
    ``agreement`` is the share of, for reports (empty: the default wording).
    """

    name = ""
    summary = ""
    supervised = True
    classes = False
    continuous = False
    loss: str | None = None
    metrics: tuple[str, ...] = ()
    metric: tuple[str, bool] | None = None
    unit = "sample"
    device = "raw"
    agreement = ""
    scorer_class: type[Scorer] = Scorer

    def targets(self, x: Any, y: Any) -> tuple[Any, Any]:
        """The ``(x, y)`` a model of this task is fitted on, from a split's inputs and targets."""
        return x, y

    def deployed(self, outputs: np.ndarray) -> np.ndarray:
        """What a deployed file returns for a batch of the Keras model's ``outputs``, where its graph
        adds a step Keras's model leaves out (detection: box selection after the per-anchor outputs);
        the scorer, ``predictions`` and verify's comparison take this. Default: the outputs."""
        return outputs

    def scorer(self, info: Mapping[str, Any] | None = None, class_names: Sequence[str] | None = None) -> Scorer:
        """A fresh ``Scorer``; ``info`` is the dataset's ``Dataset.info`` (facts a task needs),
        ``class_names`` the run's classes (``DataSpec.class_names``), where known."""
        return self.scorer_class(self, info, class_names)

    def predictions(self, y: np.ndarray | None, outputs: np.ndarray) -> dict[str, np.ndarray] | None:
        """One batch's arrays for ``predictions.npz`` (concatenated over batches), or None to save none.
        With ``classes``: ``y_true`` and ``y_pred`` class ids, of which the confusion matrix is drawn."""
        return None

    def output_metadata(self, class_names: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """The model's output tensors as the standard LiteRT metadata describes them: one plain dict
        per output tensor, in the model's output order (or each named: ``tensor``), which the
        exporter turns into the schema's ``TensorMetadata``
        (``plugins/deployment/tflite/standard_metadata.py``). Keys, all optional:
        ``name`` and ``description`` (text); ``content``: ``"feature"`` (default), ``"image"`` (a
        mask, one value per pixel) or ``{"bounding_box": {"index": [...], "type": "boundaries" |
        "upper_left" | "center", "coordinate_type": "ratio" | "pixel"}}``; ``range``: ``[min, max]``
        of the dimension the content spans (a box's 4 values: ``[2, 2]``); ``stats``: ``{"min":
        [...], "max": [...]}`` of the values; ``labels``: ``"axis"`` (the run's class names,
        ``labels.txt``, name the last axis: scores per class) or ``"value"`` (they name the values:
        class ids); ``tensor``: the output's name in the file's signature (a detector's
        ``detection_boxes``, ...): where every dict names one, the exporter puts each where the file
        has that output (a converter may reorder outputs; readers go by position). The default: one
        tensor, ``labels="axis"`` where the task has ``classes``."""
        return [{"name": "output", "labels": "axis" if self.classes and class_names else None}]

    def output_groups(self) -> list[dict[str, Any]]:
        """Output tensors read together (a detector's boxes, classes and scores): ``[{"name",
        "tensors": [output names]}]``, the metadata's ``output_tensor_groups``; default none."""
        return []

    def describe(self) -> dict[str, Any]:
        """What ``kerastack plugins`` shows of the task."""
        return {
            "supervised": self.supervised,
            "metric": self.metric[0] if self.metric else None,
            "loss": self.loss,
            "device": self.device,
        }


def task_named(name: str, hosts: Callable[[], list[Any]] | None = None, *, optional: bool = False) -> Task | None:
    """The registered task called ``name`` (an instance, made once per process). Looked up in every
    plugin host this process built (a task from a ``--plugin`` module is found in that host), then
    in the default one, whose error lists the valid names. ``optional``: None instead of an error
    for an empty name or one no plugin registers (a run read back after its task plugin is gone)."""
    if optional:
        try:
            return task_named(name, hosts) if name else None
        except KerastackError:
            return None
    if name in _made:
        return _made[name]
    from core.plugins import all_plugin_hosts, get_plugin_host

    for host in (hosts or all_plugin_hosts)():
        registry = host.registry("task")
        if name in registry.entries:
            break
    else:
        registry = get_plugin_host().registry("task")
    task = registry.get(name).call()
    if not isinstance(task, Task):
        raise UsageError(f"{registry.get(name).owner} from {registry.get(name).plugin.label()} is not a core.Task")
    task.name = name
    _made[name] = task
    return task


_made: dict[str, Task] = {}


def task_names() -> list[str]:
    """The registered tasks' names (of the default plugin host)."""
    from core.plugins import get_plugin_host

    return get_plugin_host().registry("task").names()
