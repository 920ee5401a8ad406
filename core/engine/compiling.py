"""Compiling a model for its task with the run's optimizer, schedule, loss and jit settings."""

import math

from core.errors import KerastackError
from core.task import task_named


def steps_per_epoch(opts, train_size):
    if opts.steps_per_epoch:
        return opts.steps_per_epoch
    return max(1, math.ceil(train_size / opts.batch_size))


def learning_rate(keras, opts, total_steps):
    """A constant rate, or a schedule; warm-up is linear from 0 (one-cycle: from peak/25)."""
    lr = opts.learning_rate or 1e-3
    warmup = int(opts.warmup * total_steps) if opts.warmup < 1 else int(opts.warmup)
    warmup = min(warmup, max(total_steps - 1, 0))
    if opts.schedule == "one-cycle":
        from core.engine.schedules import OneCycle

        return OneCycle(lr, total_steps, warmup or int(0.3 * total_steps))
    if opts.schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            0.0 if warmup else lr,
            decay_steps=max(1, total_steps - warmup),
            alpha=0.0,
            warmup_target=lr if warmup else None,
            warmup_steps=warmup,
        )
    if warmup:  # constant after a linear warm-up: a cosine "decay" to 100 % of the target
        return keras.optimizers.schedules.CosineDecay(
            0.0, decay_steps=1, alpha=1.0, warmup_target=lr, warmup_steps=warmup
        )
    return lr


def make_optimizer(keras, opts, total_steps):
    lr = learning_rate(keras, opts, total_steps)
    common = {"clipnorm": opts.clip_norm} if opts.clip_norm else {}
    if opts.optimizer == "adamw":
        wd = 1e-4 if opts.weight_decay is None else opts.weight_decay
        return keras.optimizers.AdamW(lr, weight_decay=wd, **common)
    if opts.weight_decay:
        common["weight_decay"] = opts.weight_decay
    if opts.optimizer == "sgd":
        return keras.optimizers.SGD(lr, momentum=opts.momentum, nesterov=opts.nesterov, **common)
    return keras.optimizers.Adam(lr, **common)


def compile_for_task(keras, model, task, arch, opts, total_steps):
    """Compile ``model`` unless its architecture did; return the modules its compile config needs.

    ``steps_per_execution`` is set on the model after compiling, so it stays out of the saved
    compile config: a model trained with it on JAX still loads and evaluates under torch."""
    jit = {"auto": "auto", "on": True, "off": False}[opts.jit]
    if model.compiled:
        model.steps_per_execution = opts.steps_per_execution
        if opts.learning_rate is not None:
            model.optimizer.learning_rate = float(opts.learning_rate)
        model.jit_compile = jit if jit != "auto" else model.jit_compile
        return []
    modules = []
    kind = task_named(task)
    if kind.loss is None:
        raise KerastackError(
            f"architecture {arch!r} returned an uncompiled model for task {task!r}, which names no default "
            "loss; compile it in build()"
        )
    loss, metrics = kind.loss, list(kind.metrics)
    if opts.label_smoothing and loss == "sparse_categorical_crossentropy":
        from core.engine.losses import SparseCrossentropyWithSmoothing

        loss = SparseCrossentropyWithSmoothing(opts.label_smoothing)
        modules.append("core.engine.losses")
    if opts.schedule == "one-cycle":
        modules.append("core.engine.schedules")
    model.compile(optimizer=make_optimizer(keras, opts, total_steps), loss=loss, metrics=metrics, jit_compile=jit)
    model.steps_per_execution = opts.steps_per_execution
    return modules
