"""Compiling a model for its task with the run's optimizer, schedule, loss and jit settings."""

import math

from core.errors import KerastackError, UsageError
from core.task import task_named


def steps_per_epoch(opts, train_size):
    if opts.steps_per_epoch:
        return opts.steps_per_epoch
    return max(1, math.ceil(train_size / opts.batch_size))


def learning_rate(keras, opts, total_steps, peak=None):
    """A constant rate, or a schedule; warm-up is linear from 0 (one-cycle: from peak/25). The peak is
    ``--learning-rate``, else ``peak`` (an architecture's own), else 1e-3."""
    lr = opts.learning_rate or peak or 1e-3
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
        model.jit_compile = jit if jit != "auto" else model.jit_compile
        return tune_compiled(keras, model, arch, opts, total_steps)
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


# Options that choose another optimizer or loss, which an architecture that compiles itself chose.
_CHOSEN_BY_ARCH = ("optimizer", "momentum", "nesterov", "label_smoothing")
# Options that tune whichever optimizer the model has.
_TUNING = ("learning_rate", "schedule", "warmup", "clip_norm", "weight_decay")


def tune_compiled(keras, model, arch, opts, total_steps):
    """Give the optimizer an architecture compiled with the run's rate, schedule, warm-up, clipping
    and weight decay; its kind and other settings (Adam's betas, ...) stay the architecture's.

    Options that would replace the optimizer or the loss are refused rather than dropped, and so are
    tuning options for an architecture with several optimizers (the GAN's). Returns the modules the
    compile config then needs (one-cycle's schedule)."""
    from core.engine.options import TrainingOptions, flag

    for name in _CHOSEN_BY_ARCH:
        if getattr(opts, name) != getattr(TrainingOptions, name):
            raise UsageError(
                f"{flag(name)} does not apply to architecture {arch!r}: it compiles its own optimizer and loss "
                "(set them through its hyperparameters, see `kerastack plugins`)"
            )
    asked = [name for name in _TUNING if getattr(opts, name) != getattr(TrainingOptions, name)]
    if not asked:
        return []
    optimizer = model.optimizer
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)  # mixed_float16's loss scaling
    if isinstance(optimizer, keras.optimizers.MultiOptimizer) or isinstance(
        optimizer._learning_rate, keras.optimizers.schedules.LearningRateSchedule
    ):
        raise UsageError(
            f"{flag(asked[0])} does not apply to architecture {arch!r}: its optimizers or schedules are its own"
        )
    peak = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
    optimizer.learning_rate = learning_rate(keras, opts, total_steps, peak)
    if opts.clip_norm:  # replaces the architecture's clipping
        optimizer.clipnorm, optimizer.global_clipnorm = opts.clip_norm, None
    if opts.weight_decay is not None:
        optimizer.weight_decay = opts.weight_decay or None
    return ["core.engine.schedules"] if opts.schedule == "one-cycle" else []
