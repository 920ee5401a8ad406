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


BACKEND = Jax()
