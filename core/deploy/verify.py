"""``verify()``: run a .tflite on the device-side runtime (``tflite/``) and compare it with Keras."""

import contextlib
import itertools
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from core import backend as backends
from core.data import batches as iter_batches
from core.data import is_pair
from core.deploy.compare import input_fits, record_result, sample_inputs
from core.deploy.export import deployed_model, load_dataset
from core.engine.datasets import predict_batches
from core.errors import KerastackError, UsageError
from core.files import StrPath
from core.plugins import get_plugin_host
from core.proc.progress import ProgressBar, progress_bar
from core.runs import Run, load_run
from core.task import Scorer, Task, task_named
from core.tracking import log_verified

BATCH = 256  # samples per step: the LiteRT input tensor and keras predict
LARGE_SPLIT = 1024  # samples from which verify shows a progress bar (on a terminal), or a streamed split


def verify(
    tflite_path: StrPath,
    run_dir: StrPath,
    *,
    threads: int = 1,
    latency_runs: int = 200,
    plugins: Iterable[str] | None = None,
    record: bool = True,
    other_run: bool = False,
) -> dict[str, Any]:
    """Metrics of the .tflite and of the run's Keras model on the run's test split (else validation).
    The Keras model is the one exporters convert: in float32 where the run trained in mixed precision.

    Returns a dict with ``size_bytes``, ``latency_ms_p50``/``p90`` (single-sample invocations at
    ``threads`` threads), ``max_abs_diff`` and the task's metrics (``Task.scorer``, the .tflite's
    as ``tflite_NAME``): for classification ``tflite_accuracy``, ``keras_accuracy`` and ``agreement``
    (top-1); for regression ``tflite_mae``/``keras_mae``; for reconstruction ``tflite_mse``/``keras_mse``. A deployed model that takes other inputs than the
    data (a GAN's generator) is compared on seeded random inputs. With ``record`` the result is
    also kept in ``verify.json`` beside the file (keyed by file name), which ``kerastack report`` reads.

    A file exported from another run than ``run_dir`` (its metadata's ``source_run``) is refused
    unless ``other_run``; its results are then never recorded (that folder belongs to its own run).
    """
    tflite_path = Path(tflite_path)
    run = load_run(run_dir)
    source = exported_from(tflite_path, run.path)
    if source and not other_run:
        raise UsageError(
            f"{tflite_path} was exported from run {source}, not {run.path}: verify it with --run {source}, "
            "or pass --other-run to compare it with this run's model and data (nothing is recorded then)"
        )
    lite = _open(tflite_path, threads)
    plugins = list(run.record.get("plugins", [])) if plugins is None else list(plugins)
    backends.use(backends.loaded() or run.backend)
    keras_model = deployed_model(run)
    split_name, first, totals = _compare(lite, keras_model, run, load_dataset(run, get_plugin_host(plugins)))
    bench = lite.benchmark(first[:1], runs=latency_runs)
    result = {
        "file": str(tflite_path),
        "split": split_name,
        "samples": totals.n,
        "size_bytes": lite.size_bytes,
        "max_abs_diff": totals.max_abs_diff,
        "latency_ms_p50": float(bench["p50_ms"]),
        "latency_ms_p90": float(bench["p90_ms"]),
        "threads": threads,
    }
    result.update(totals.metrics())
    if record and not source:
        keep_result(tflite_path, run, result)
    return result


def keep_result(tflite_path: StrPath, run: Run, result: dict[str, Any]) -> Path:
    """Record ``result`` in ``verify.json`` beside the file (``record_result``) and, if ``run`` (a
    loaded run) is tracked, log its numbers and that verify.json to the run's MLflow run; a tracking
    failure is one line of warning. Returns verify.json's path."""
    kept = record_result(tflite_path, result)
    log_verified(run.path, run.record, tflite_path, result, kept)
    return kept


def _open(tflite_path: Path, threads: int) -> Any:
    """The .tflite on the device-side runner; its error names the file."""
    from tflite.runner import TFLiteModel

    try:
        return TFLiteModel(tflite_path, num_threads=threads)
    except (OSError, ValueError) as exc:  # the runner's messages begin with the file's path
        text = str(exc)
        raise KerastackError(text if text.startswith(str(tflite_path)) else f"{tflite_path}: {text}") from None


def _compare(lite: Any, keras_model: Any, run: Any, dataset: Any) -> tuple[str, np.ndarray, "_Totals"]:
    """Both models on the run's evaluation split, batch by batch, keeping sums only (memory stays
    flat however many samples the split holds): ``(split name, first inputs, totals)``."""
    split_name, split = dataset.evaluation_split()
    batches = iter_batches(split, BATCH)
    first = next(batches, None)
    if first is None:
        raise KerastackError(f"the {split_name} split of run {run.path} is empty")
    if not input_fits(keras_model.input_shape[1:], first[0].shape[1:]):
        # The deployed part takes other inputs than the data (a generator takes noise).
        split_name = "random"
        batches, first = iter(()), (sample_inputs(keras_model, None, 256), None)
    spec = run.record.get("spec", {})
    task = task_named(spec["task"]) if split_name != "random" and spec.get("task") else None
    scorer = task.scorer(getattr(dataset, "info", None), spec.get("class_names")) if task else None
    totals = _Totals(task, lite.output_limits, scorer)
    with _progress(split, split_name) as bar:
        for x, y, keras_out in predict_batches(keras_model, itertools.chain([first], batches)):
            try:
                lite_out = lite.predict(x)
            except ValueError as exc:
                raise KerastackError(f"{exc} (the {split_name} split of run {run.path})") from None
            keras_out = keras_out.astype("float32", copy=False)
            if task is not None:  # what the file's graph adds after the model (detection: box selection)
                keras_out = np.asarray(task.deployed(keras_out), np.float32)
            totals.add(x, y, lite_out.reshape(keras_out.shape), keras_out)
            bar.advance(len(x))
    return split_name, first[0], totals


def _progress(split: Any, split_name: str) -> Any:
    """A progress bar over the split's samples where it is large (or streamed, its size unknown)."""
    size = len(split[0]) if is_pair(split) else None
    if split_name == "random" or (size is not None and size < LARGE_SPLIT):
        return contextlib.nullcontext(ProgressBar())
    return progress_bar(size, f"verify ({split_name} split)")


CONSTANT = 1e-6  # outputs that vary over the samples by less than this share of their size are constant


class _Totals:
    """Running sums for verify: the outputs' difference and range (generic), the task's metrics (its
    scorer); ``task`` None compares outputs only. ``limits``: the range of the .tflite's integer
    output (``TFLiteModel.output_limits``), where one makes it; ``scorer``: the task's (default: a
    fresh one)."""

    def __init__(
        self, task: Task | None, limits: tuple[float, float] | None = None, scorer: Scorer | None = None
    ) -> None:
        self.task = task
        self.scorer = scorer or (task.scorer() if task is not None else None)
        self.limits = limits
        self.n = 0
        self.max_abs_diff = 0.0
        self.keras_low = self.keras_high = None  # per output element, over the samples
        self.clipped = 0

    @property
    def continuous(self) -> bool:
        return self.task is not None and self.task.continuous and self.limits is not None

    def add(self, x: np.ndarray, y: np.ndarray | None, lite_out: np.ndarray, keras_out: np.ndarray) -> None:
        self.n += len(x)
        if lite_out.size:
            self.max_abs_diff = max(self.max_abs_diff, float(np.max(np.abs(lite_out - keras_out))))
            self._track(lite_out, keras_out)
        if self.scorer is not None:
            x, y = self.task.targets(x, y)
            self.scorer.add(x, y, keras_out, lite_out)

    def _track(self, lite_out: np.ndarray, keras_out: np.ndarray) -> None:
        """Keras's output range per element (constant outputs), and the values the .tflite clipped
        (a task with ``continuous`` outputs): at a limit of its integer output while Keras's lie beyond it."""
        low, high = keras_out.min(0), keras_out.max(0)
        self.keras_low = low if self.keras_low is None else np.minimum(self.keras_low, low)
        self.keras_high = high if self.keras_high is None else np.maximum(self.keras_high, high)
        if self.continuous:
            from tflite.runner import at_limits

            beyond = (keras_out < self.limits[0]) | (keras_out > self.limits[1])
            self.clipped += int(np.sum(at_limits(lite_out, self.limits) & beyond))

    def constant(self) -> bool:
        """Whether Keras's outputs were the same for every sample (two or more): any two models then
        agree, so agreement and max abs diff say nothing of the .tflite."""
        if self.keras_low is None or self.n < 2:
            return False
        size = float(np.max(np.abs(np.concatenate([self.keras_low.ravel(), self.keras_high.ravel()]))))
        return bool(np.max(self.keras_high - self.keras_low) <= CONSTANT * max(size, 1e-30))

    def metrics(self) -> dict[str, Any]:
        out: dict[str, Any] = self.scorer.result("tflite") if self.scorer is not None else {}
        if self.continuous:
            out.update(output_limits=list(self.limits), clipped_outputs=self.clipped)
        if self.constant():
            out["keras_outputs_constant"] = True
            out["warnings"] = [constant_warning(self.task)]
        return out


def constant_warning(task: Task | None) -> str:
    """What verify says of a model whose Keras outputs are constant over the evaluation split."""
    if task is not None and task.classes:
        return (
            "Keras's outputs are the same for every sample: agreement means nothing here (a constant output, "
            "or ties, has the same top class on both sides); the model did not learn from its inputs"
        )
    return "Keras's outputs are the same for every sample: the model's outputs do not depend on its inputs"


def exported_from(tflite_path: StrPath, run_path: StrPath) -> str | None:
    """The run ``tflite_path`` was exported from (its metadata's ``source_run``) when that is another
    run than ``run_path``; else None. A file inside ``run_path`` is that run's, wherever it moved."""
    from tflite.runner import load_metadata

    tflite_path, run_path = Path(tflite_path).resolve(), Path(run_path).resolve()
    if run_path in tflite_path.parents:
        return None
    try:
        source = (load_metadata(tflite_path) or {}).get("source_run")
    except (OSError, ValueError):
        return None  # unreadable metadata: opening the model says what is wrong
    if not source or Path(source).resolve() == run_path:
        return None
    return source
