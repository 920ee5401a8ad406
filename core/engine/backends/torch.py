"""The torch backend: one device per process; several processes through ``torch.distributed`` (gloo
on CPU, NCCL on GPU) from torchrun's ``MASTER_ADDR``, ``MASTER_PORT``, ``RANK``, ``WORLD_SIZE`` (or
the local launcher's FileStore). Keras's ``fit`` does not reduce anything on torch: each trainable
parameter all-reduces its gradient in a post-accumulate hook and the epoch's logs are averaged, so
Keras's own ``fit`` (callbacks, checkpoints) trains the model."""

import contextlib
import datetime
import os

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
        dist.init_process_group(
            "nccl" if gpu else "gloo",
            init_method=os.environ.get(TORCH_INIT_ENV) or "env://",
            rank=here.rank,
            world_size=here.size,
            timeout=datetime.timedelta(seconds=distributed.timeout_s()),
        )
        return contextlib.nullcontext()

    def prepare_model(self, model):
        """Several processes: rank 0's initial weights everywhere, and every trainable parameter's
        gradient all-reduced (averaged) as soon as it is accumulated. Always: Keras's per-pixel
        cross-entropy made to train (``_patch_pixel_crossentropy``)."""
        _patch_pixel_crossentropy()
        if self.world().size == 1:
            return
        import torch.distributed as dist

        for variable in model.variables:
            dist.broadcast(variable.value.data, 0)
        self.sync_gradients(model)

    def sync_gradients(self, model):
        """Several processes: hook every trainable parameter not hooked yet, so that its gradient is
        averaged over the ranks. Called again when layers are unfrozen (``--fine-tune-after``): a
        parameter that was frozen at the start would otherwise train on each rank's own shard, silently."""
        if self.world().size == 1:
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

    def log_reducers(self):
        """Several processes: a callback that averages the epoch's training logs over the ranks (each
        rank logged its own shard's), first among the callbacks so the history has the mean."""
        if self.world().size == 1:
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
