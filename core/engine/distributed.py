"""Training in several processes, each backend on its own engine: who this process is (``World``,
read from the variables its launcher sets), joining the others, the shard of data it reads, and the
reductions Keras's ``fit`` does not do itself on torch.

- torch: ``torch.distributed`` (gloo on CPU, NCCL on GPU) from torchrun's ``MASTER_ADDR``,
  ``MASTER_PORT``, ``RANK``, ``WORLD_SIZE``; each trainable parameter all-reduces its gradient in a
  post-accumulate hook, so Keras's own ``fit`` (callbacks, checkpoints) trains the model.
- JAX: ``keras.distribution.initialize()`` from ``KERAS_DISTRIBUTION_JOB_ADDRESSES``,
  ``KERAS_DISTRIBUTION_NUM_PROCESSES``, ``KERAS_DISTRIBUTION_PROCESS_ID`` (gloo CPU collectives),
  then ``DataParallel`` over every process's devices.
- TensorFlow: ``MultiWorkerMirroredStrategy`` from ``TF_CONFIG``.

Nothing here imports a framework at module level; nothing here writes a file.
"""

import contextlib
import dataclasses
import datetime
import json
import os
import shutil
import tempfile
from pathlib import Path

from core.errors import UsageError
from core.proc.launch import LOCAL_ENV, SCRATCH_ENV, TORCH_INIT_ENV  # what `--processes N` sets in its workers

# Seconds a rendezvous or a collective may wait for a peer before it fails (a stuck peer; a dead one
# is noticed in seconds). Long enough for a slow peer's first compile.
TIMEOUT_ENV = "KERASTACK_DIST_TIMEOUT"
DEFAULT_TIMEOUT_S = 300
ENGINES = {
    "torch": "torch.distributed (gloo on CPU, nccl on GPU) + Keras fit with all-reduced gradients",
    "jax": "jax.distributed via keras.distribution.initialize + DataParallel (gloo CPU collectives)",
    "tensorflow": "tf.distribute.MultiWorkerMirroredStrategy (TF_CONFIG)",
}


@dataclasses.dataclass(frozen=True)
class World:
    """This process's place among the processes of one training: ``rank`` of ``size``, and the
    variables it was read from (``source``)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    source: str = ""

    @property
    def writer(self):
        return self.rank == 0


def world(backend=None, environ=None):
    """The ``World`` that the launcher's variables describe (one process of one when there are
    none): ``TF_CONFIG`` for TensorFlow, ``KERAS_DISTRIBUTION_*`` (or torchrun's) for JAX,
    torchrun's ``RANK``/``WORLD_SIZE`` for torch; any of them when ``backend`` is None."""
    env = os.environ if environ is None else environ
    local = int(env.get("LOCAL_RANK", 0) or 0)
    if backend in (None, "tensorflow") and env.get("TF_CONFIG"):
        try:
            config = json.loads(env["TF_CONFIG"])
            workers = len(config["cluster"].get("worker", [])) + len(config["cluster"].get("chief", []))
            task = config["task"]
            rank = int(task["index"]) + (1 if task["type"] == "worker" and "chief" in config["cluster"] else 0)
        except (ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"TF_CONFIG is not a TensorFlow cluster spec ({exc}): {env['TF_CONFIG'][:200]}") from None
        return World(rank, workers, local, "TF_CONFIG")
    if backend in (None, "jax") and env.get("KERAS_DISTRIBUTION_NUM_PROCESSES"):
        return World(
            _int(env, "KERAS_DISTRIBUTION_PROCESS_ID"),
            _int(env, "KERAS_DISTRIBUTION_NUM_PROCESSES"),
            local,
            "KERAS_DISTRIBUTION_*",
        )
    if env.get("WORLD_SIZE"):
        return World(_int(env, "RANK"), _int(env, "WORLD_SIZE"), local, "RANK/WORLD_SIZE")
    return World()


def _int(env, name):
    try:
        return int(env[name])
    except (KeyError, ValueError):
        raise UsageError(f"{name} must be set to an integer by the launcher, got {env.get(name)!r}") from None


def timeout_s():
    return float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_S))


def is_local():
    return os.environ.get(LOCAL_ENV) == "1"


def check(opts, backend):
    """Usage errors, before anything starts: what ``--distribute``/``--processes`` cannot do here."""
    here = world(backend)
    if here.size > 1 and opts.processes not in (1, here.size):
        raise UsageError(
            f"--processes {opts.processes}, but the launcher started {here.size} processes ({here.source}); "
            f"drop --processes under a launcher, or use --processes {here.size}"
        )
    processes = max(opts.processes, here.size)
    if opts.distribute == "model" and backend != "jax":
        raise UsageError(
            f"--distribute model needs the jax backend (keras.distribution.ModelParallel); on {backend} use "
            "--distribute data (with --processes N for several processes)"
        )
    if processes > 1 and opts.distribute != "data":
        raise UsageError(
            f"{processes} processes train data-parallel only: add --distribute data "
            f"(--distribute {opts.distribute} runs in one process)"
        )
    if processes > 1 and opts.batch_size % processes:
        low = opts.batch_size - opts.batch_size % processes
        raise UsageError(
            f"--batch-size {opts.batch_size} is the global batch, divided among {processes} processes: "
            f"use a multiple of {processes} (e.g. {low or processes} or {low + processes})"
        )
    if processes > 1 and opts.augment:
        raise UsageError(f"--augment does not run in {processes} processes yet; drop --augment or use 1 process")
    return processes


def describe(backend, processes):
    """What run.json records of a multi-process run."""
    here = world(backend)
    return {
        "processes": processes,
        "engine": ENGINES[backend],
        "launcher": "kerastack --processes" if is_local() else (here.source or "kerastack --processes"),
    }


@contextlib.contextmanager
def rank_folder(out, resume_from):
    """The folder this process writes: the run folder on rank 0; on the other ranks a private
    temporary folder (they save as rank 0 does, as TensorFlow's collective reads need, and it is
    removed after), holding copies of what a resumed run reads."""
    here = world()
    if here.writer:
        yield out
        return
    # Inside the launcher's folder when there is one: it goes with it, even after a SIGKILL here.
    scratch = Path(tempfile.mkdtemp(prefix=f"kerastack-rank{here.rank}-", dir=os.environ.get(SCRATCH_ENV) or None))
    try:
        if resume_from:
            (scratch / "run").mkdir()
            for name in ("run.json", "history.csv", "checkpoint.keras", "checkpoint.json", "best.keras"):
                if (Path(out) / name).exists():
                    shutil.copyfile(Path(out) / name, scratch / "run" / name)
        yield scratch / "run"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def join(keras, backend):
    """Join the other processes through ``backend``'s own engine; the context to build and train
    the model in."""
    here = world(backend)
    if backend == "torch":
        _join_torch(here)
        return contextlib.nullcontext()
    if backend == "jax":
        _join_jax(keras, here)
        devices = keras.distribution.list_devices()
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices, auto_shard_dataset=False))
        return contextlib.nullcontext()
    return _tensorflow_strategy().scope()


def _join_torch(here):
    import torch
    import torch.distributed as dist

    if dist.is_initialized():
        return
    if is_local():
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    gpu = torch.cuda.is_available()
    if gpu:
        torch.cuda.set_device(here.local_rank % torch.cuda.device_count())
    dist.init_process_group(
        "nccl" if gpu else "gloo",
        init_method=os.environ.get(TORCH_INIT_ENV) or "env://",
        rank=here.rank,
        world_size=here.size,
        timeout=datetime.timedelta(seconds=timeout_s()),
    )


def _join_jax(keras, here):
    env = os.environ
    if not env.get("KERAS_DISTRIBUTION_JOB_ADDRESSES") and env.get("MASTER_ADDR"):
        # torchrun's variables (or a launcher that sets them): the coordinator is the master.
        env["KERAS_DISTRIBUTION_JOB_ADDRESSES"] = f"{env['MASTER_ADDR']}:{env.get('MASTER_PORT', '29500')}"
        env["KERAS_DISTRIBUTION_NUM_PROCESSES"] = str(here.size)
        env["KERAS_DISTRIBUTION_PROCESS_ID"] = str(here.rank)
    if is_local():
        env.setdefault("JAX_COORDINATOR_BIND_ADDRESS", env["KERAS_DISTRIBUTION_JOB_ADDRESSES"].split(",")[0])
    if not _jax_initialized():
        keras.distribution.initialize()


def _jax_initialized():
    try:
        from jax._src import distributed

        return distributed.global_state.client is not None
    except (ImportError, AttributeError):
        return False


def _tensorflow_strategy():
    import tensorflow as tf

    _patch_keras_tensorflow_trainer()
    options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=timeout_s())
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)


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


def local_devices():
    """The JAX devices of this process (each split is trimmed to a multiple of them)."""
    import jax

    return jax.local_device_count()


def prepare_model(model, backend):
    """torch, several processes: rank 0's initial weights everywhere, and every trainable
    parameter's gradient all-reduced (averaged) as soon as it is accumulated."""
    if backend != "torch" or world(backend).size == 1:
        return
    import torch.distributed as dist

    for variable in model.variables:
        dist.broadcast(variable.value.data, 0)
    sync_gradients(model, backend)


def sync_gradients(model, backend):
    """torch, several processes: hook every trainable parameter not hooked yet, so that its gradient
    is averaged over the ranks. Called again when layers are unfrozen (``--fine-tune-after``): a
    parameter that was frozen at the start would otherwise train on each rank's own shard, silently."""
    if backend != "torch" or world(backend).size == 1:
        return
    import torch.distributed as dist

    size = dist.get_world_size()
    hooked = model.__dict__.setdefault("_kerastack_synced", set())

    def average(param):
        dist.all_reduce(param.grad)
        param.grad.div_(size)

    for variable in model.trainable_variables:
        if id(variable.value) not in hooked:
            variable.value.register_post_accumulate_grad_hook(average)
            hooked.add(id(variable.value))


def log_reducer(backend):
    """torch, several processes: a callback that averages the epoch's training logs over the ranks
    (each rank logged its own shard's), first among the callbacks so the history has the mean."""
    if backend != "torch" or world(backend).size == 1:
        return []
    import keras
    import torch
    import torch.distributed as dist

    class AverageLogs(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if not logs:
                return
            names = sorted(k for k in logs if not k.startswith("val_"))  # val_: the whole split, each rank
            values = torch.tensor([float(logs[k]) for k in names], dtype=torch.float64)
            dist.all_reduce(values)
            logs.update({k: float(v) / dist.get_world_size() for k, v in zip(names, values.tolist())})

    return [AverageLogs()]


def eval_batch_size(opts, backend=None):
    """The batch size each process gives ``evaluate``: every process evaluates the whole split.
    On JAX a process's batch is its local part of the global batch (the processes' batches are
    put together); on TensorFlow the strategy splits the global batch; on torch each rank runs its
    own."""
    if backend is None:
        import keras

        backend = keras.backend.backend()
    if backend == "jax":
        return opts.batch_size // world(backend).size
    return opts.batch_size


def shard(keras, train, opts, seed, initial_epoch, backend):
    """The training data of this process for ``fit``: every epoch one permutation of the whole
    train split (the same on every process, drawn from the seed and the epoch), cut into global
    batches (a last partial batch is left out), of which this process takes its slice. TensorFlow
    gets the whole global batch and slices it itself (MultiWorkerMirroredStrategy's DATA
    sharding). Its ``callback`` (put first among fit's callbacks) tells it the epoch."""
    import numpy as np

    here = world(backend)
    parts = 1 if backend == "tensorflow" else here.size
    index = 0 if backend == "tensorflow" else here.rank
    x, y = train
    n = len(x)
    global_batch = opts.batch_size
    local = global_batch // parts

    class Shard(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.set_epoch(initial_epoch)
            self.callback = EpochSetter()

        def set_epoch(self, epoch):
            self.epoch = epoch
            self.order = np.random.RandomState((seed + epoch) % 2**32).permutation(n)

        def __len__(self):
            return max(n // global_batch, 1)

        def __getitem__(self, i):
            rows = self.order[i * global_batch : (i + 1) * global_batch]
            rows = np.sort(rows[index * local : (index + 1) * local]) if len(rows) == global_batch else rows
            return (x[rows],) if y is None else (x[rows], y[rows])

    class EpochSetter(keras.callbacks.Callback):
        # The epoch from fit itself: Keras also calls a PyDataset's on_epoch_end once before the
        # first epoch (after its first look at the data), so counting those calls is off by one.
        def on_epoch_begin(self, epoch, logs=None):
            shard.set_epoch(epoch)

    shard = Shard()
    return shard


def loader_batch_size(opts, backend):
    """The batch size a streamed dataset's loader is given: a process's share of the global batch
    (torch, JAX; TensorFlow's strategy splits global batches itself)."""
    return opts.batch_size if backend == "tensorflow" else opts.batch_size // world(backend).size


def shard_stream(keras, stream, backend):
    """A streamed train split, loaded with this process's share of the batch size
    (``loader_batch_size``): of each N consecutive batches, process r reads the r-th only, so
    together they make one global batch and each reads only its own files. Every process's stream
    is the same sequence (the same loader options and seed)."""
    here = world(backend)
    if backend == "tensorflow" or here.size == 1:
        return stream

    class StreamShard(keras.utils.PyDataset):
        def __len__(self):
            return max(len(stream) // here.size, 1)

        def __getitem__(self, i):
            return stream[i * here.size + here.rank]

        def on_epoch_end(self):
            stream.on_epoch_end()

    return StreamShard()
