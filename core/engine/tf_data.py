"""Splits of arrays fed to ``fit`` under TensorFlow as repeated tf.data pipelines.

Given arrays, Keras's TensorFlow trainer makes a new tf.data iterator at the start of every epoch
and another at its end (``EpochIterator._enumerate_iterator``), for the training split and for the
validation split alike: four ``MakeIterator`` calls of ~12 ms each per epoch on this 2-core machine,
a third of a 0.13 s digits epoch. A pipeline that repeats, given ``steps_per_epoch``, keeps one
iterator for the whole training, as the tf.data guide recommends; the validation split, given
``validation_steps``, gets one an epoch (Keras's ``evaluate`` resets its iterator) instead of two.

The epochs stay those of ``fit(x, y, batch_size=...)``: each one is one pass over the split,
reshuffled every pass (the indices are shuffled, then batched, then gathered from the arrays, as
Keras's own array adapter does), its last batch partial; the validation split is read in order.
"""

import math
from collections.abc import Mapping
from typing import Any


def _as_structure(x: Any) -> Any:
    """Arrays as tf.nest reads them: a list of inputs becomes a tuple (tf.data would stack a list)."""
    if isinstance(x, list):
        return tuple(_as_structure(v) for v in x)
    if isinstance(x, Mapping):
        return {k: _as_structure(v) for k, v in x.items()}
    return x


def _rows(x: Any) -> int:
    import tensorflow as tf

    return len(tf.nest.flatten(x)[0])


def _pipeline(split: tuple, batch_size: int, shuffle_seed: int | None) -> tuple[Any, int]:
    """A repeating dataset of ``split``'s batches and the number of batches in one pass."""
    import tensorflow as tf

    x, y = split
    arrays = _as_structure(x) if y is None else (_as_structure(x), y)
    rows = _rows(x)
    tensors = tf.nest.map_structure(tf.convert_to_tensor, arrays)
    indices = tf.data.Dataset.range(rows)
    if shuffle_seed is not None:
        indices = indices.shuffle(rows, seed=shuffle_seed, reshuffle_each_iteration=True)

    def gather(batch):
        return tf.nest.map_structure(lambda t: tf.gather(t, batch), tensors)

    data = indices.batch(batch_size).map(gather, num_parallel_calls=tf.data.AUTOTUNE)
    return data.repeat().prefetch(tf.data.AUTOTUNE), math.ceil(rows / batch_size)


def fit_arguments(
    train: tuple, validation: tuple | None, batch_size: int, seed: int, steps_per_execution: int = 1
) -> dict | None:
    """``model.fit`` keyword arguments for ``train`` and ``validation`` (``(x, y)`` arrays, ``y``
    possibly None) under TensorFlow: the data, ``steps_per_epoch`` and ``validation_steps``.
    ``seed`` seeds the shuffles (a resumed run passes its own, as it reseeds Keras).

    Keras's compiled loop runs ``steps_per_execution`` steps while data lasts, so on a repeating
    pipeline an epoch whose batches are not a multiple of it would run into the next pass. Such a
    training split gets None (fit it from the arrays: Keras's own shuffle, another batch order than
    with 1 step per call); such a validation split is given as arrays (its order is fixed)."""
    batches = [math.ceil(_rows(split[0]) / batch_size) for split in (train, validation) if split is not None]
    if batches[0] % steps_per_execution:
        return None
    data, steps = _pipeline(train, batch_size, seed)
    arguments = {"x": data, "steps_per_epoch": steps, "shuffle": False}  # the pipeline shuffles
    if validation is None or not batches[1]:
        return arguments
    if batches[1] % steps_per_execution:
        arguments.update(validation_data=tuple(validation), validation_batch_size=batch_size)
    else:
        arguments["validation_data"], arguments["validation_steps"] = _pipeline(validation, batch_size, None)
    return arguments
