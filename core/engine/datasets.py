"""How the engine uses a dataset plugin's data: the options its loader gets (training's batch size
for a streamed dataset), the task a run trains, an inferred vocabulary, and predicting batch by batch
with one input shape (used by training's evaluation and by ``verify()``)."""

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from core.data import Dataset, DataSpec, is_pair
from core.errors import KerastackError, UsageError
from core.task import task_named

BATCH_OPTION = "batch_size"  # the loader parameter through which a streamed dataset gets training's batch size


def recorded_data_options(defaults: Mapping[str, Any], options: Mapping[str, Any], batch_size: int, owner: str) -> dict:
    """``options`` of a dataset as a new run records them. A loader that takes ``batch_size`` (one
    whose splits stream batches) is given training's batch size (``loader_options``): a
    ``batch_size`` among ``options`` that disagrees is a usage error, and one that agrees is dropped,
    so that a run records one batch size, the one its batches have."""
    given = options.get(BATCH_OPTION)
    if BATCH_OPTION not in defaults or given is None:
        return dict(options)
    if given != batch_size:
        raise UsageError(
            f"{owner}: --data-opt {BATCH_OPTION}={given} disagrees with --batch-size {batch_size}: its "
            f"batches are the training batches; set --batch-size {given} instead"
        )
    return {k: v for k, v in options.items() if k != BATCH_OPTION}


def loader_options(defaults: Mapping[str, Any], options: Mapping[str, Any], batch_size: int | None) -> dict:
    """The keyword arguments for a dataset loader: ``options``, and training's ``batch_size`` for a
    loader that takes one (a run recorded before it was training's keeps its own)."""
    if BATCH_OPTION in defaults and BATCH_OPTION not in options and batch_size is not None:
        return {**options, BATCH_OPTION: int(batch_size)}
    return dict(options)


def task_for(spec, tasks, arch, data):
    """The task a run trains: the dataset's, if the architecture supports it, else an unsupervised
    task of the architecture (an autoencoder learns from any dataset's inputs, labels unused)."""
    if spec.task in tasks:
        return spec.task
    for task in tasks:
        if not task_named(task).supervised:
            return task
    raise UsageError(f"architecture {arch!r} supports {', '.join(tasks)}; dataset {data!r} is {spec.task}")


def with_inferred_vocab(spec: DataSpec, dataset: Dataset) -> DataSpec:
    """``spec`` with ``vocab_size`` inferred, where the dataset gives integer ids without one: the
    largest id of the train split (arrays) + 1. Unchanged if it sets one, if its inputs are not
    signed integers, or if the train split streams (a ``PyDataset``) or holds negative values."""
    if spec.vocab_size is not None or not spec.input_dtype.startswith("int") or not is_pair(dataset.train):
        return spec
    x = np.asarray(dataset.train[0])
    if x.size == 0 or int(x.min()) < 0:
        return spec
    return replace(spec, vocab_size=int(x.max()) + 1)


def vocab_hint(spec: DataSpec, dataset: Dataset) -> str:
    """A sentence that says what to set when integer inputs came with no ``vocab_size`` that could
    be inferred; "" otherwise."""
    if spec.vocab_size is not None or not spec.input_dtype.startswith("int"):
        return ""
    why = "its train split streams" if not is_pair(dataset.train) else "its train split holds negative ids"
    return (
        f"the dataset's {spec.input_dtype} inputs have no vocab_size and {why}, so none can be inferred: "
        "set vocab_size (the largest token id + 1) on the core.Dataset it returns"
    )


def check_token_ids(dataset: Dataset, vocab_size: int, owner: str | None = None) -> None:
    """Raise an error naming the split if its ids do not fit the ``vocab_size`` inferred from the
    train split (an embedding cannot look up an id >= its vocabulary)."""
    where = f"{owner}: " if owner else ""
    for name in ("validation", "test"):
        split = dataset.split(name)
        if split is None or not is_pair(split) or np.asarray(split[0]).size == 0:
            continue
        x = np.asarray(split[0])
        low, high = int(x.min()), int(x.max())
        if low < 0:
            raise KerastackError(f"{where}the {name} split has token id {low}; token ids must be >= 0")
        if high >= vocab_size:
            raise KerastackError(
                f"{where}the {name} split has token id {high}, not below the vocab_size {vocab_size} inferred "
                f"from the train split (its largest id + 1); set vocab_size={high + 1} (or more) on the "
                "core.Dataset it returns"
            )


def predict_batches(model: Any, pairs: Iterable[tuple[Any, Any]]) -> Iterator[tuple[Any, Any, np.ndarray]]:
    """``(x, y, outputs)`` for each ``(x, y)`` of ``pairs`` (a split's ``batches``): the model's
    outputs for ``x``.

    Every call has one input shape (that of the first batch; a shorter batch is padded with copies
    of its first row, whose outputs are dropped) and one call path (``predict_on_batch``, as
    ``keras_latency`` uses): a compiled predict function is then traced once, where a last partial
    batch or a mix of ``predict`` and ``predict_on_batch`` traced it again (TensorFlow's
    "triggered tf.function retracing"; JAX compiles again)."""
    rows = None
    for x, y in pairs:
        rows = rows or len(x)
        yield x, y, predict_rows(model, x, rows)


def predict_rows(model: Any, x: Any, rows: int) -> np.ndarray:
    """The model's output for ``x``, predicted ``rows`` samples per call (the last call padded)."""
    if not isinstance(x, np.ndarray) or not len(x):
        return np.asarray(model.predict_on_batch(x))  # several inputs: as they come
    outs = []
    for start in range(0, len(x), rows):
        chunk = x[start : start + rows]
        n = len(chunk)
        if n < rows:
            chunk = np.concatenate([chunk, np.repeat(chunk[:1], rows - n, axis=0)])
        outs.append(np.asarray(model.predict_on_batch(chunk))[:n])
    return np.concatenate(outs)
