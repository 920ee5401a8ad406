"""The torch backend: one device per process; several processes through ``torch.distributed`` (gloo
on CPU, NCCL on GPU) from torchrun's ``MASTER_ADDR``, ``MASTER_PORT``, ``RANK``, ``WORLD_SIZE`` (or
the local launcher's FileStore). Keras's ``fit`` does not reduce anything on torch: the gradients are
all-reduced in buckets while backward runs (``GradientBuckets``), BatchNormalization's moments are
all-reduced, and the metrics' states are summed over the processes when Keras reads them for the
logs, so Keras's own ``fit`` (callbacks, checkpoints) trains the model and each process evaluates
its part of a split."""

import atexit
import contextlib
import datetime
import math
import os
import types

from core.engine import distributed
from core.engine.backends.base import Backend
from core.errors import UsageError
from core.proc.launch import TORCH_INIT_ENV


class Torch(Backend):
    name = "torch"

    def check(self, opts):
        if opts.steps_per_execution > 1:
            raise UsageError(
                f"--steps-per-execution {opts.steps_per_execution}: the torch backend runs one "
                "batch per call (Keras refuses more); use 1, or the jax or tensorflow backend"
            )

    def devices(self, keras, opts):
        return contextlib.nullcontext()  # one process, one device

    def join(self, keras):
        import torch
        import torch.distributed as dist

        if dist.is_initialized():
            return contextlib.nullcontext()
        here = self.world()
        if distributed.is_local():
            os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
        gpu = torch.cuda.is_available()
        if gpu:
            torch.cuda.set_device(here.local_rank % torch.cuda.device_count())
        timeout = datetime.timedelta(seconds=distributed.timeout_s())
        store = _restart_store(here, timeout)
        where = {"store": store} if store is not None else {"init_method": os.environ.get(TORCH_INIT_ENV) or "env://"}
        dist.init_process_group(
            "nccl" if gpu else "gloo", rank=here.rank, world_size=here.size, timeout=timeout, **where
        )
        atexit.register(_leave_group)
        return contextlib.nullcontext()

    def prepare_model(self, model, sync_batchnorm=False):
        """Several processes: rank 0's initial weights everywhere, the trainable parameters'
        gradients all-reduced (averaged) in buckets during backward, BatchNormalization's batch
        moments over the global batch (``sync_batchnorm``), and the metrics reduced over the processes whenever Keras
        reads them for the logs. Always: Keras's per-pixel cross-entropy made to train
        (``_patch_pixel_crossentropy``)."""
        _patch_pixel_crossentropy()
        if self.world().size == 1:
            return
        import torch.distributed as dist

        for variable in model.variables:
            dist.broadcast(variable.value.data, 0)
        self.sync_gradients(model)
        if sync_batchnorm:
            _patch_synchronized_batch_norm()
        _reduce_metrics_when_read(model)

    def sync_gradients(self, model):
        """Several processes: every trainable parameter's gradient averaged over the ranks
        (``GradientBuckets``). Called again when layers are unfrozen (``--fine-tune-after``): a
        parameter that was frozen at the start would otherwise train on each rank's own shard, silently."""
        if self.world().size == 1:
            return
        reducer = model.__dict__.get("_kerastack_buckets")
        if reducer is None:
            reducer = model.__dict__["_kerastack_buckets"] = GradientBuckets(bucket_bytes())
        reducer.track([variable.value for variable in model.trainable_variables])


def _leave_group():
    """At exit, the process group destroyed, as torch asks: left to the interpreter's teardown, a
    gloo worker that had finished now and then died in it ("terminate called without an active
    exception") after printing its result (seen once in the restart test here)."""
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def _restart_store(here, timeout):
    """Under torchrun, the agent's TCPStore, with the keys of this restart apart from the last's.

    torchrun (torch >= 2.5) keeps one TCPStore for all its restarts and ``env://`` writes the
    process group's keys into it with no prefix, so a worker of a restarted group can read the
    address a dead worker of the previous attempt published, and gloo fails with "connection
    refused" (pytorch/pytorch#135712, #167288; it failed the torchrun restart test in two full
    runs in a row here). The keys of each attempt go under
    ``kerastack/restart_<TORCHELASTIC_RESTART_COUNT>``. On one node the count is the same in every
    worker. On several nodes torch's agents can count restarts differently; there
    ``TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1`` on torchrun gives a fresh store per restart instead
    (README, Restarts). None: not under torchrun's agent store."""
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True" or os.environ.get(TORCH_INIT_ENV):
        return None
    import torch.distributed as dist

    restart = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    host, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
    agent = dist.TCPStore(host, port, here.size, is_master=False, timeout=timeout)
    return dist.PrefixStore(f"kerastack/restart_{restart}", agent)


BUCKET_ENV = "KERASTACK_TORCH_BUCKET_MB"
DEFAULT_BUCKET_MB = 25.0  # DDP's default bucket_cap_mb


def bucket_bytes():
    """The size of a gradient bucket (``KERASTACK_TORCH_BUCKET_MB``, default 25 as DDP's; 0: one
    all-reduce per parameter, as each is accumulated)."""
    value = os.environ.get(BUCKET_ENV, "")
    try:
        mb = float(value) if value else DEFAULT_BUCKET_MB
    except ValueError:
        raise UsageError(f"{BUCKET_ENV}={value!r}: a size in MB (0: one all-reduce per parameter)") from None
    if mb < 0:
        raise UsageError(f"{BUCKET_ENV}={value!r}: a size in MB, 0 or more")
    return int(mb * 2**20)


class GradientBuckets:
    """Gradients averaged over the ranks in buckets, overlapping the backward pass, as DDP's reducer
    does: the parameters are put in buckets of about ``size`` bytes in reverse order (the order in
    which backward produces their gradients). A post-accumulate hook marks a parameter's gradient
    ready; a bucket whose gradients are all ready is flattened into one tensor and all-reduced
    asynchronously (``async_op=True``), buckets strictly in order so that every rank issues the same
    collectives in the same order, while backward goes on. At the end of backward (a callback queued
    on autograd's engine) the rest are launched (a parameter with no gradient contributes zeros),
    every bucket is waited for and its mean copied back into the gradients, before Keras's optimizer
    reads them. ``size`` 0: each parameter all-reduced alone, synchronously, in its hook."""

    def __init__(self, size):
        self.size = size
        self.params, self.hooked, self.buckets = [], set(), []
        self._reset()

    def track(self, params):
        """Hook the parameters not hooked yet; the buckets made again over all of them."""
        for param in params:
            if id(param) not in self.hooked:
                param.register_post_accumulate_grad_hook(self._ready)
                self.hooked.add(id(param))
                self.params.append(param)
        self.buckets, current, nbytes = [], [], 0
        for param in reversed(self.params):
            current.append(param)
            nbytes += param.numel() * param.element_size()
            if nbytes >= self.size:
                self.buckets.append(current)
                current, nbytes = [], 0
        if current:
            self.buckets.append(current)
        self.bucket_of = {id(p): i for i, bucket in enumerate(self.buckets) for p in bucket}
        self._reset()

    def _reset(self):
        self.missing = [len(bucket) for bucket in self.buckets]
        self.launched, self.works, self.queued = 0, [], False

    def _ready(self, param):
        import torch.distributed as dist

        if self.size == 0:
            dist.all_reduce(param.grad)
            param.grad.div_(dist.get_world_size())
            return
        if not self.queued:
            from torch.autograd import Variable

            Variable._execution_engine.queue_callback(self._finish)
            self.queued = True
        self.missing[self.bucket_of[id(param)]] -= 1
        while self.launched < len(self.buckets) and self.missing[self.launched] == 0:
            self._launch(self.launched)

    def _launch(self, index):
        import torch
        import torch.distributed as dist

        bucket = self.buckets[index]
        flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in bucket])
        self.works.append((index, flat, dist.all_reduce(flat, async_op=True)))
        self.launched += 1

    def _finish(self):
        import torch.distributed as dist

        while self.launched < len(self.buckets):
            self._launch(self.launched)
        size = dist.get_world_size()
        for index, flat, work in self.works:
            work.wait()
            flat.div_(size)
            at = 0
            for param in self.buckets[index]:
                n = param.numel()
                if param.grad is not None:
                    param.grad.copy_(flat[at : at + n].view_as(param.grad))
                at += n
        self._reset()


BACKEND = Torch()


def _patch_pixel_crossentropy():
    """Keras 3.15.1's torch ``sparse_categorical_crossentropy`` moves the class axis of the output to
    position 1 for ``nll_loss``. For a class per pixel, (n, H, W, C) becomes a non-contiguous
    (n, C, H, W), and torch's 4-D ``nll_loss2d`` backward then fails: "grad_input must be contiguous"
    (pytorch #175084). Outputs of rank above 2 are flattened to (pixels, C) first: the same loss per
    pixel, by the 2-D kernel. Installed once per process."""
    from keras.src.backend.torch import nn

    if getattr(nn, "_kerastack_patched", False):
        return
    original = nn.sparse_categorical_crossentropy

    def sparse_categorical_crossentropy(target, output, from_logits=False, axis=-1):
        import torch

        output = nn.convert_to_tensor(output)
        if output.dim() <= 2:
            return original(target, output, from_logits=from_logits, axis=axis)
        target = nn.convert_to_tensor(target, dtype=torch.long)
        if target.dim() == output.dim() and target.shape[axis] == 1:
            target = torch.squeeze(target, dim=axis)
        output = torch.movedim(output, axis, -1)
        flat = original(target.reshape(-1), output.reshape(-1, output.shape[-1]), from_logits=from_logits)
        return flat.reshape(output.shape[:-1])

    nn.sparse_categorical_crossentropy = sparse_categorical_crossentropy
    nn._kerastack_patched = True


def _reduce_metrics_when_read(model):
    """Each process's metrics hold its own part (of the training batches, of an evaluated split).
    Where Keras reads them for an epoch's or an evaluation's logs (``_get_metrics_result_or_logs``,
    once per epoch and once per ``evaluate``, on every process alike), their states are summed over
    the processes first: Keras's metrics keep sums and counts (the loss tracker weighs each batch by
    its size), so the result is the whole's, not a mean of the processes' means."""
    import torch
    import torch.distributed as dist

    read = model._get_metrics_result_or_logs

    def reduced(self, logs):
        variables = [v for metric in self.metrics for v in metric.variables]
        if variables:
            flat = torch.cat([v.value.detach().reshape(-1).to(torch.float64) for v in variables])
            dist.all_reduce(flat)
            at = 0
            for v in variables:
                n = v.value.numel()
                v.assign(flat[at : at + n].reshape(v.value.shape).to(v.value.dtype))
                at += n
        return read(logs)

    object.__setattr__(model, "_get_metrics_result_or_logs", types.MethodType(reduced, model))


def _patch_synchronized_batch_norm():
    """BatchNormalization (training) normalizes by the moments of the global batch, as one process
    does, not of this process's part: the sum over the processes (``torch.distributed.nn``'s
    all-reduce, through which the gradient flows back to every process's inputs) of the inputs and of
    their squares, in one collective; the variance is E[x²] - E[x]² as in Keras's torch ``moments``. Keras 3.15 refuses ``synchronized=True`` on torch; the
    layer's ``_moments`` is replaced in this process (a multi-process torch worker) only, so saved
    models are unchanged. Masked inputs keep Keras's own moments."""
    import torch
    import torch.distributed.nn.functional as dist_fn
    from keras.src.layers.normalization.batch_normalization import BatchNormalization

    if getattr(BatchNormalization, "_kerastack_synced", False):
        return
    original = BatchNormalization._moments

    def _moments(self, inputs, mask):
        if mask is not None:
            return original(self, inputs, mask)
        x = inputs if inputs.dtype in (torch.float32, torch.float64) else inputs.float()
        axes = self._reduction_axes
        count = torch.tensor(float(math.prod(x.shape[i] for i in axes)), dtype=x.dtype, device=x.device)
        sums = [torch.sum(x, dim=axes).reshape(-1), torch.sum(torch.square(x), dim=axes).reshape(-1)]
        total = dist_fn.all_reduce(torch.cat([*sums, count.reshape(1)]))
        channels = sums[0].numel()
        mean, squares = total[:channels] / total[-1], total[channels:-1] / total[-1]
        variance = squares - torch.square(mean)  # E[x²] - E[x]², as Keras's own torch moments
        kept = [d for i, d in enumerate(x.shape) if i not in axes]
        return mean.reshape(kept).to(inputs.dtype), variance.reshape(kept).to(inputs.dtype)

    BatchNormalization._moments = _moments
    BatchNormalization._kerastack_synced = True
