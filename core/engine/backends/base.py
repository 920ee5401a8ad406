"""``Backend``: what the engine asks of a backend, with the answers most backends share (one
process's share of each global batch, no extra reductions). ``core/engine/backends/<name>.py``
overrides what its backend does differently. Nothing here imports a framework."""

import contextlib

from core.engine import distributed
from core.errors import UsageError


class Backend:
    """One backend's way to train: the methods the engine calls instead of testing the backend's name.

    ``splits_global_batch``: in several processes, the backend's strategy is given whole global
    batches and splits them itself (TensorFlow's MultiWorkerMirroredStrategy); otherwise each process
    is given its own share of every global batch."""

    name = ""
    splits_global_batch = False

    def world(self):
        """This process's place among the processes of the training (``core.engine.distributed``)."""
        return distributed.world(self.name)

    def check(self, opts):
        """Refuse training options this backend cannot honour, before anything is written."""

    def distribution(self, keras, opts):
        """The context to build and train the model in: the other processes joined when there are
        several, else this process's devices (``--distribute``), or nothing."""
        if self.world().size > 1:
            return self.join(keras)
        if opts.distribute == "none":
            return contextlib.nullcontext()
        return self.devices(keras, opts)

    def devices(self, keras, opts):
        """``--distribute data`` or ``model`` on this process's devices: the context to train in."""
        return contextlib.nullcontext()

    def join(self, keras):
        """Join the other processes through the backend's own engine; the context to train in."""
        raise NotImplementedError(f"{self.name} cannot train in several processes")

    def for_devices(self, dataset, opts):
        """The dataset as this process's devices take it (as it is, unless a backend says otherwise)."""
        return dataset

    def prepare_model(self, model, sync_batchnorm=False):
        """The model built or resumed, before the first step: what the processes must agree on;
        ``sync_batchnorm`` (``--sync-batchnorm``): BatchNormalization by the global batch's moments."""

    def sync_gradients(self, model):
        """Reduce the gradients of trainable variables not reduced yet (called again after
        ``--fine-tune-after`` unfreezes layers), where Keras's ``fit`` does not."""

    def log_reducers(self):
        """Callbacks put first among ``fit``'s: they reduce each epoch's logs over the processes."""
        return []

    def array_feed(self, model, train, validation, opts, seed):
        """``model.fit`` keyword arguments that feed ``(x, y)`` arrays the backend's own way, or None
        (``fit`` then batches the arrays itself)."""
        return None

    def loader_batch_size(self, opts):
        """The batch size a streamed dataset's loader is given: a process's share of the global batch,
        or the whole of it where the strategy splits global batches itself."""
        return opts.batch_size if self.splits_global_batch else opts.batch_size // self.world().size

    def eval_batch_size(self, opts):
        """The batch size each process gives ``evaluate``: its share of the global batch, or the
        whole of it where the strategy splits global batches itself."""
        return self.loader_batch_size(opts)

    def eval_split(self, split):
        """The part of an ``(x, y)`` evaluation split (validation or test) that this process
        evaluates: in several processes, the ``rank``-th of ``size`` contiguous parts, and the
        backend reduces the metrics' states (sums and counts) over the processes so that every
        process reports the whole split's values; the whole split where the strategy splits global
        batches itself (it reduces its metrics itself) or where a part would be empty."""
        here = self.world()
        if split is None or here.size == 1 or self.splits_global_batch or len(split[0]) < here.size:
            return split
        n = len(split[0])
        rows = slice(here.rank * n // here.size, (here.rank + 1) * n // here.size)
        return tuple(None if part is None else part[rows] for part in split)

    def shard(self, keras, train, opts, seed, initial_epoch):
        """The training data of this process for ``fit``: every epoch one permutation of the whole
        train split (the same on every process, drawn from the seed and the epoch), cut into global
        batches (a last partial batch is left out), of which this process takes its slice; a strategy
        that splits global batches itself gets the whole global batch. Its ``callback`` (put first
        among fit's callbacks) tells it the epoch."""
        import numpy as np

        here = self.world()
        parts = 1 if self.splits_global_batch else here.size
        index = 0 if self.splits_global_batch else here.rank
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

    def shard_stream(self, keras, stream):
        """A streamed train split, loaded with this process's share of the batch size
        (``loader_batch_size``): of each N consecutive batches, process r reads the r-th only, so
        together they make one global batch and each reads only its own files. Every process's stream
        is the same sequence (the same loader options and seed)."""
        here = self.world()
        if self.splits_global_batch or here.size == 1:
            return stream

        class StreamShard(keras.utils.PyDataset):
            def __len__(self):
                return max(len(stream) // here.size, 1)

            def __getitem__(self, i):
                return stream[i * here.size + here.rank]

            def on_epoch_end(self):
                stream.on_epoch_end()

        return StreamShard()


def check_devices(opts, devices):
    """Refuse a global batch that the devices cannot share evenly."""
    if opts.batch_size % devices:
        raise UsageError(f"--batch-size {opts.batch_size} must be a multiple of the {devices} devices")
