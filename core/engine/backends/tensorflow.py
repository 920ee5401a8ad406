"""The TensorFlow backend: ``--distribute data`` over this process's GPUs (or its logical CPUs) with
``MirroredStrategy``; several processes with ``MultiWorkerMirroredStrategy`` from ``TF_CONFIG``
(which splits each global batch itself), and the fixes Keras's TensorFlow trainer needs there.

Splits of arrays are fed to ``fit`` as repeated tf.data pipelines (``fit_arguments``). Given arrays,
Keras's TensorFlow trainer makes a new tf.data iterator at the start of every epoch and another at
its end (``EpochIterator._enumerate_iterator``), for the training split and for the validation split
alike: four ``MakeIterator`` calls of ~12 ms each per epoch on this 2-core machine, a third of a
0.13 s digits epoch. A pipeline that repeats, given ``steps_per_epoch``, keeps one iterator for the
whole training, as the tf.data guide recommends; the validation split, given ``validation_steps``,
gets one an epoch (Keras's ``evaluate`` resets its iterator) instead of two.

The epochs stay those of ``fit(x, y, batch_size=...)``: each one is one pass over the split,
reshuffled every pass (the indices are shuffled, then batched, then gathered from the arrays, as
Keras's own array adapter does), its last batch partial; the validation split is read in order.
"""

import math
from collections.abc import Mapping
from typing import Any

from core.engine import distributed
from core.engine.backends.base import Backend, check_devices


class TensorFlow(Backend):
    name = "tensorflow"
    splits_global_batch = True  # MultiWorkerMirroredStrategy's DATA sharding

    def devices(self, keras, opts):
        import tensorflow as tf

        # MirroredStrategy() alone takes the GPUs, or a single CPU: name the CPUs when there is no GPU.
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        check_devices(opts, len(devices))
        return tf.distribute.MirroredStrategy([d.name for d in devices]).scope()

    def join(self, keras):
        import tensorflow as tf

        _patch_keras_tensorflow_trainer()
        options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=distributed.timeout_s())
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options).scope()

    def prepare_model(self, model, sync_batchnorm=False):
        """Several processes with ``--sync-batchnorm``: BatchNormalization normalizes by the global
        batch's moments."""
        if self.world().size > 1 and sync_batchnorm:
            _patch_synchronized_batch_norm()

    def array_feed(self, model, train, validation, opts, seed):
        """One process on one device: one repeating tf.data iterator for the training, not 4 an epoch."""
        if opts.distribute != "none":
            return None
        return fit_arguments(train, validation, opts.batch_size, seed, model.steps_per_execution)


BACKEND = TensorFlow()


def _patch_keras_tensorflow_trainer():
    """Two fixes Keras 3.15.1's TensorFlow ``fit`` needs under MultiWorkerMirroredStrategy
    (keras-team/keras#20585), applied only in a multi-worker process:
    ``_maybe_symbolic_build`` reduced a PerReplica batch with ``axis=None`` and failed ("PerReplica
    ... to a Tensor"): it builds from this worker's first replica's batch instead; and the logs
    (scalars) were reduced with ``axis=0``: they are reduced with ``axis=None``."""
    import tensorflow as tf
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer

    if getattr(trainer, "_kerastack_patched", False):
        return
    original_reduce = trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and trainer._collective_all_reduce_multi_worker(strategy):
            return tree.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return original_reduce(values, strategy, reduction)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if self._distribute_strategy is None or iterator is None:
            return original_build(self, iterator=iterator, data_batch=data_batch)
        for _, _, it in iterator:
            batch = next(it)
            data_batch = tree.map_structure(
                lambda v: (
                    self.distribute_strategy.experimental_local_results(v)[0]
                    if isinstance(v, tf.distribute.DistributedValues)
                    else v
                ),
                batch,
            )
            break
        with self.distribute_strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    original_build = trainer.TensorFlowTrainer._maybe_symbolic_build
    trainer.reduce_per_replica = reduce_per_replica
    trainer.TensorFlowTrainer._maybe_symbolic_build = _maybe_symbolic_build
    trainer._kerastack_patched = True


def _patch_synchronized_batch_norm():
    """BatchNormalization (training) takes Keras's own ``synchronized=True`` moments in a
    multi-worker process: the batch sums all-reduced over the strategy's replicas
    (``_compute_moments_sync``), so each worker normalizes by the global batch's moments, as one
    process does. The layers' ``synchronized`` stays as built (it is saved in the model's config,
    and Keras refuses it on the other backends)."""
    from keras import ops
    from keras.src.layers.normalization.batch_normalization import BatchNormalization

    if getattr(BatchNormalization, "_kerastack_synced", False):
        return
    original = BatchNormalization._moments

    def _moments(self, inputs, mask):
        if mask is not None:
            return original(self, inputs, mask)
        return ops.moments(inputs, axes=self._reduction_axes, synchronized=True)

    BatchNormalization._moments = _moments
    BatchNormalization._kerastack_synced = True


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
