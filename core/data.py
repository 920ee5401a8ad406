"""What dataset plugins return (``Dataset``) and what architectures are built from (``DataSpec``)."""

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.errors import KerastackError, UsageError
from core.task import task_named


@dataclass
class Dataset:
    """What a dataset plugin's ``load`` returns.

    ``train``, ``validation`` and ``test`` are ``(x, y)`` pairs of numpy arrays (``y`` may be None)
    or ``keras.utils.PyDataset``s; ``validation`` and ``test`` may be None. ``task`` names a
    registered task (``kerastack plugins``: classification, regression, segmentation, ...);
    ``class_names`` name the classes of a task with class ids (else the labels count them).
    ``vocab_size`` is set by token datasets (integer ids in ``[0, vocab_size)``, 0 = padding); left
    unset, training infers it from the train split's largest id. ``info`` holds facts a task needs
    about the data (forecasting: ``target_index``, ``season``); its scorer gets them.
    """

    train: Any
    validation: Any = None
    test: Any = None
    task: str = "classification"
    class_names: tuple[str, ...] | None = None
    vocab_size: int | None = None
    info: dict = field(default_factory=dict)

    def split(self, name: str) -> Any:
        """The split called ``name`` (``"train"``, ``"validation"`` or ``"test"``), or None."""
        return getattr(self, name)

    def evaluation_split(self) -> tuple[str, Any]:
        """``(name, split)`` of the split used to judge a model: test, else validation, else train."""
        for name in ("test", "validation", "train"):
            if self.split(name) is not None:
                return name, self.split(name)
        raise KerastackError("the dataset has no splits")


@dataclass(frozen=True)
class DataSpec:
    """What an architecture's ``build`` gets to know about the data.

    ``input_shape`` is one sample's shape (no batch axis); ``num_classes`` and ``class_names`` are
    set for a task with class ids (classification, segmentation); ``task`` is the task the run trains;
    ``input_dtype`` the inputs' numpy dtype name (``"int32"`` for token ids); ``vocab_size`` the
    number of token ids, if any; ``target_shape`` one sample's target shape (no batch axis) where
    the targets are not class ids: ``(3,)`` for three values, ``(horizon,)`` for a forecast.
    """

    input_shape: tuple[int, ...]
    num_classes: int | None = None
    task: str = "classification"
    class_names: tuple[str, ...] | None = None
    input_dtype: str = "float32"
    vocab_size: int | None = None
    target_shape: tuple[int, ...] | None = None


def is_pair(split: Any) -> bool:
    """Whether ``split`` is an ``(x, y)`` pair of arrays (as opposed to a PyDataset or None)."""
    return isinstance(split, (tuple, list)) and len(split) == 2


def first_batch(split):
    """``(x, y)`` arrays of a split: the whole pair, or the first batch of a PyDataset."""
    return split if is_pair(split) else batch_of(split, 0)


def as_arrays(split: Any, limit: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """``(x, y)`` numpy arrays of a split, at most ``limit`` samples if given (a PyDataset is read
    batch by batch, up to ``limit``); ``y`` is None where the split has no targets."""
    if is_pair(split):
        x, y = split
        return (x[:limit], None if y is None else y[:limit]) if limit else (x, y)
    xs, ys, n = [], [], 0
    for i in range(len(split)):
        x, y = batch_of(split, i)
        xs.append(np.asarray(x))
        if y is not None:
            ys.append(np.asarray(y))
        n += len(x)
        if limit and n >= limit:
            break
    x = np.concatenate(xs)[:limit] if xs else np.zeros((0,))
    y = np.concatenate(ys)[:limit] if ys else None
    return x, y


def batches(split: Any, size: int = 256) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """``(x, y)`` numpy batches of a split: slices of its arrays, or a PyDataset's own batches.
    One batch at a time is in memory (beyond what the split itself holds)."""
    if is_pair(split):
        x, y = split
        for start in range(0, len(x), size):
            yield np.asarray(x[start : start + size]), None if y is None else np.asarray(y[start : start + size])
        return
    for i in range(len(split)):
        x, y = batch_of(split, i)
        yield np.asarray(x), None if y is None else np.asarray(y)


def batch_of(split, i):
    batch = split[i]
    if isinstance(batch, (tuple, list)):
        return batch[0], (batch[1] if len(batch) > 1 else None)
    return batch, None


def check_dataset(dataset: Dataset, owner: str) -> None:
    """Raise a ``KerastackError`` naming ``owner`` (the dataset plugin) if ``dataset`` breaks the
    contract: what kerastack checks before training (splits, shapes, dtypes, finite values, labels)."""
    if not isinstance(dataset, Dataset):
        raise KerastackError(f"{owner} returned {type(dataset).__name__}, expected core.Dataset")
    try:
        task_named(dataset.task)
    except UsageError as exc:
        raise KerastackError(f"{owner}: {exc}") from None
    if dataset.train is None:
        raise KerastackError(f"{owner}: the train split is empty")
    for name in ("train", "validation", "test"):
        split = dataset.split(name)
        if split is None or not is_pair(split):
            continue
        x, y = split
        if len(x) == 0:
            raise KerastackError(f"{owner}: the {name} split is empty")
        if y is not None and len(x) != len(y):
            raise KerastackError(f"{owner}: {name} split has {len(x)} inputs but {len(y)} targets")
        for what, array in (("inputs", x), ("targets", y)):
            dtype = np.asarray(array).dtype if array is not None else None
            if dtype is not None and not (np.issubdtype(dtype, np.number) or dtype == np.bool_):
                raise KerastackError(
                    f"{owner}: {name} split {what} have dtype {dtype}; expected numbers (float, int or bool arrays)"
                )
        if np.issubdtype(np.asarray(x).dtype, np.floating) and not np.all(np.isfinite(x)):
            raise KerastackError(f"{owner}: {name} split inputs contain NaN or inf")


def spec_of(dataset: Dataset, owner: str | None = None) -> DataSpec:
    """The DataSpec of a dataset: input shape from the train split, classes from names or labels.

    ``owner`` (the dataset plugin) is named in the error about labels out of range."""
    x, y = first_batch(dataset.train)
    x = np.asarray(x)
    num_classes = None
    names = tuple(dataset.class_names) if dataset.class_names is not None else None
    if task_named(dataset.task).classes:
        if names:
            num_classes = len(names)
        elif y is not None:
            labels = [
                np.asarray(s[1])
                for s in (dataset.train, dataset.validation, dataset.test)
                if s is not None and is_pair(s)
            ] or [np.asarray(y)]
            num_classes = int(max(int(np.max(a)) for a in labels)) + 1
        if num_classes is not None:
            _check_labels(dataset, num_classes, owner)
    elif names:  # class ids inside other targets (detection's boxes): the names count them
        num_classes = len(names)
    target_shape = None
    if y is not None and not task_named(dataset.task).classes:
        target_shape = tuple(int(d) for d in np.asarray(y).shape[1:])
    return DataSpec(
        tuple(int(d) for d in x.shape[1:]),
        num_classes,
        dataset.task,
        names,
        str(x.dtype),
        dataset.vocab_size,
        target_shape,
    )


def targets_for(task: str, split: Any) -> Any:
    """The ``(x, y)`` a split is fitted on for ``task`` (``Task.targets``): labels for supervised
    tasks, the inputs themselves for reconstruction, none for generation. A PyDataset is returned
    as it is."""
    if not is_pair(split):
        return split
    return task_named(task).targets(*split)


def _check_labels(dataset, num_classes, owner=None):
    where = f"{owner}: " if owner else ""
    for name in ("train", "validation", "test"):
        split = dataset.split(name)
        if split is None or not is_pair(split) or split[1] is None:
            continue
        y = np.asarray(split[1])
        if not np.issubdtype(y.dtype, np.integer):
            raise KerastackError(f"{where}{name} labels have dtype {y.dtype}; {dataset.task} needs integer labels")
        if len(y) and (y.min() < 0 or y.max() >= num_classes):
            raise KerastackError(
                f"{where}{name} labels must lie in [0, {num_classes - 1}] ({num_classes} classes); "
                f"found {int(y.min())}..{int(y.max())}"
            )
