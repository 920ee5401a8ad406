"""The JAX backend: ``--distribute data`` or ``model`` over this process's devices through
``keras.distribution`` (each split trimmed to a multiple of the devices); several processes through
``keras.distribution.initialize()`` from ``KERAS_DISTRIBUTION_JOB_ADDRESSES``,
``KERAS_DISTRIBUTION_NUM_PROCESSES``, ``KERAS_DISTRIBUTION_PROCESS_ID`` (or torchrun's variables;
gloo CPU collectives), then ``DataParallel`` over every process's devices."""

import contextlib
import dataclasses
import os

from core.data import is_pair
from core.engine import distributed
from core.engine.backends.base import Backend, check_devices


class Jax(Backend):
    name = "jax"

    def devices(self, keras, opts):
        devices = keras.distribution.list_devices()
        check_devices(opts, len(devices))
        if opts.distribute == "data":
            keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        else:
            mesh = keras.distribution.DeviceMesh((1, len(devices)), ("batch", "model"), devices=devices)
            layout = keras.distribution.LayoutMap(mesh)
            layout[".*dense.*kernel"] = (None, "model")
            layout[".*embedding.*embeddings"] = (None, "model")
            distribution = keras.distribution.ModelParallel(layout_map=layout, batch_dim_name="batch")
            keras.distribution.set_distribution(distribution)
        return contextlib.nullcontext()

    def join(self, keras):
        here, env = self.world(), os.environ
        if not env.get("KERAS_DISTRIBUTION_JOB_ADDRESSES") and env.get("MASTER_ADDR"):
            # torchrun's variables (or a launcher that sets them): the coordinator is the master.
            env["KERAS_DISTRIBUTION_JOB_ADDRESSES"] = f"{env['MASTER_ADDR']}:{env.get('MASTER_PORT', '29500')}"
            env["KERAS_DISTRIBUTION_NUM_PROCESSES"] = str(here.size)
            env["KERAS_DISTRIBUTION_PROCESS_ID"] = str(here.rank)
        if distributed.is_local():
            env.setdefault("JAX_COORDINATOR_BIND_ADDRESS", env["KERAS_DISTRIBUTION_JOB_ADDRESSES"].split(",")[0])
        if not _initialized():
            keras.distribution.initialize()
        devices = keras.distribution.list_devices()
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices, auto_shard_dataset=False))
        return contextlib.nullcontext()

    def prepare_model(self, model, sync_batchnorm=False):
        """Several processes without ``--sync-batchnorm``: each device computes its part of the
        batch's gradients, BatchNormalization moments included, and the gradients are averaged in
        one all-reduce (``_one_gradient_all_reduce``), as torch's and TensorFlow's workers do; a
        model with its own ``train_step`` keeps Keras's step, with BatchNormalization patched to
        each device's moments (``_patch_per_device_batch_norm``). With ``--sync-batchnorm``:
        Keras's step on the global batch, whose moments XLA computes across the processes."""
        if self.world().size > 1 and not sync_batchnorm:
            import jax
            from keras.src.backend.jax.trainer import JAXTrainer

            if type(model).train_step is JAXTrainer.train_step:
                _one_gradient_all_reduce(model)
            else:
                _patch_per_device_batch_norm(jax.device_count())

    def for_devices(self, dataset, opts):
        """JAX shards every batch across the devices, the last partial one too: with ``--distribute``,
        each split is trimmed to a multiple of this process's device count (at most ``devices - 1``
        samples dropped per split)."""
        if opts.distribute == "none":
            return dataset
        import jax

        devices = jax.local_device_count()

        def trim(split):
            if not is_pair(split):
                return split
            n = len(split[0]) - len(split[0]) % devices
            return split[0][:n], None if split[1] is None else split[1][:n]

        return dataclasses.replace(
            dataset, train=trim(dataset.train), validation=trim(dataset.validation), test=trim(dataset.test)
        )

    def eval_split(self, split):
        """Each process's local batches are put together into global ones, so the parts must be
        the same size: a split that does not divide evenly among the processes is evaluated whole
        by each (every sample then appears once per process in the global batches, which leaves
        the means as they are). The metrics are computed on the global batches: nothing to reduce."""
        size = self.world().size
        if split is None or size == 1 or len(split[0]) % size:
            return split
        return super().eval_split(split)


def _initialized():
    try:
        from jax._src import distributed as jax_distributed

        return jax_distributed.global_state.client is not None
    except (ImportError, AttributeError):
        return False


def _one_gradient_all_reduce(model):
    """Keras's training step, with the gradients computed per device (``jax.shard_map`` over the
    batch axis) and averaged in **one** all-reduce of a flat vector.

    Under Keras's own step the gradients are reduced by the partitioner: one all-reduce op, but
    XLA's CPU runtime runs it as one gloo collective per gradient (79 on a 1 M-parameter ResNet, a
    round trip each), which cost a 2-process step ~170 ms of its ~530 (bench/scale_notes.md). Here
    each device also normalizes by its own part's BatchNormalization moments; the non-trainable
    float state (moving statistics) takes the devices' mean, the metric states the sum of their
    updates (the loss tracker's total and count); the step's predictions are put back together for
    the compiled metrics, which Keras then updates on the global batch as before. Random layers
    (dropout) draw the same stream on each device, as each torch or TensorFlow process draws its
    own from the same seed."""
    import jax
    import keras
    from jax.flatten_util import ravel_pytree
    from jax.sharding import PartitionSpec
    from keras.src.trainers.data_adapters import data_adapter_utils

    distribution = keras.distribution.distribution()
    mesh, axis = distribution.device_mesh.backend_mesh, distribution.batch_dim_name
    replicated, sharded = PartitionSpec(), PartitionSpec(axis)

    def is_float(value):
        return jax.numpy.issubdtype(value.dtype, jax.numpy.floating)

    def train_step(state, data):
        trainable, non_trainable, optimizer_variables, metrics_variables = state
        x, y, sample_weight = data_adapter_utils.unpack_x_y_sample_weight(data)
        grad_fn = jax.value_and_grad(model.compute_loss_and_updates, has_aux=True)

        def local(trainable, non_trainable, metrics_variables, optimizer_variables, x, y, sample_weight):
            (_, aux), grads = grad_fn(
                trainable,
                non_trainable,
                metrics_variables,
                x,
                y,
                sample_weight,
                training=True,
                optimizer_variables=optimizer_variables,
            )
            loss, y_pred, new_non_trainable, new_metrics = aux
            # Everything reduced goes in one vector: means (gradients, moving statistics, loss)
            # as sums over the devices divided by their count, the metric states' updates as sums.
            devices = mesh.shape[axis]
            means = [v / devices if is_float(v) else None for v in new_non_trainable]
            updates = [new - old if is_float(new) else None for old, new in zip(metrics_variables, new_metrics)]
            flat, unflatten = ravel_pytree(([g / devices for g in grads], loss / devices, means, updates))
            grads, loss, means, updates = unflatten(jax.lax.psum(flat, axis))
            new_non_trainable = [v if mean is None else mean for v, mean in zip(new_non_trainable, means)]
            new_metrics = [
                new if update is None else old + update
                for old, new, update in zip(metrics_variables, new_metrics, updates)
            ]
            return grads, loss, y_pred, new_non_trainable, new_metrics

        grads, loss, y_pred, non_trainable, metrics_variables = jax.shard_map(
            local,
            mesh=mesh,
            in_specs=(replicated, replicated, replicated, replicated, sharded, sharded, sharded),
            out_specs=(replicated, replicated, sharded, replicated, replicated),
            check_vma=False,
        )(trainable, non_trainable, metrics_variables, optimizer_variables, x, y, sample_weight)
        trainable, optimizer_variables = model.optimizer.stateless_apply(optimizer_variables, grads, trainable)
        logs, metrics_variables = model._update_metrics_variables(metrics_variables, loss, x, y, y_pred, sample_weight)
        return logs, (trainable, non_trainable, optimizer_variables, metrics_variables)

    model.train_step = train_step
    model.train_function = None  # made again from this step


def _patch_per_device_batch_norm(groups):
    """BatchNormalization (training) normalizes each device's part of the batch by that part's
    moments. Under ``DataParallel`` the batch is one global array, so Keras's moments are the global
    batch's and XLA all-reduces them: on a 15-BatchNorm ResNet, 56 small blocking all-reduces a step
    beside the one of the gradients (bench/scale_notes.md). Here the batch is seen as
    ``(groups, batch / groups, ...)``, one group per device in the order the batch is sharded, so
    each device's moments stay on it. The moving statistics take the mean of the groups' moments
    (a reduction that no gradient waits for). Masked inputs, renorm, and a batch the groups do not
    divide keep Keras's own path; the layer's config and saved weights are as Keras writes them."""
    from keras import ops
    from keras.src import backend
    from keras.src.layers.normalization.batch_normalization import BatchNormalization

    if getattr(BatchNormalization, "_kerastack_groups", None) == groups:
        return
    original = getattr(BatchNormalization, "_kerastack_original_call", BatchNormalization.call)

    def call(self, inputs, training=None, mask=None):
        batch = inputs.shape[0]
        if not (training and self.trainable) or mask is not None or self.renorm or not batch or batch % groups:
            return original(self, inputs, training=training, mask=mask)
        x = ops.cast(inputs, backend.result_type(inputs.dtype, "float32"))
        rank, axis = len(x.shape), self.axis % len(x.shape)
        grouped = ops.reshape(x, (groups, batch // groups, *x.shape[1:]))
        axes = [a + 1 for a in range(rank) if a != axis]
        mean, variance = ops.moments(grouped, axes=axes, keepdims=True)  # (groups, 1, ..., C, ...)
        shape = [1] * (rank + 1)
        shape[axis + 1] = x.shape[axis]
        factor = ops.rsqrt(variance + self.epsilon)
        if self.scale:
            factor = factor * ops.reshape(ops.cast(self.gamma, x.dtype), shape)
        out = (grouped - mean) * factor
        if self.center:
            out = out + ops.reshape(ops.cast(self.beta, x.dtype), shape)
        channels = x.shape[axis]
        for moving, value in ((self.moving_mean, mean), (self.moving_variance, variance)):
            step = ops.mean(ops.reshape(value, (groups, channels)), axis=0)
            moving.assign(ops.cast(moving, x.dtype) * self.momentum + step * (1.0 - self.momentum))
        return ops.cast(ops.reshape(out, x.shape), self.compute_dtype)

    BatchNormalization._kerastack_original_call = original
    BatchNormalization.call = call
    BatchNormalization._kerastack_groups = groups


BACKEND = Jax()
