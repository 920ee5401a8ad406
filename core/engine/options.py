"""Training settings: one dataclass shared by the CLI flags, config files, run.json and resume."""

from dataclasses import asdict, dataclass, fields

from core.errors import UsageError, choices_text, did_you_mean
from core.params import coerce

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine", "one-cycle")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
JIT = ("auto", "on", "off")
DISTRIBUTE = ("none", "data", "model")
AUGMENT = ("flip", "rotate", "zoom", "translate")


@dataclass
class TrainingOptions:
    """How to train. Every field is also a ``kerastack train`` flag (``batch_size`` → ``--batch-size``)."""

    epochs: int = 10
    batch_size: int = 32
    steps_per_epoch: int = None  # cap the batches per epoch (quick checks)
    steps_per_execution: int = 1  # batches per compiled call (TensorFlow, JAX; torch takes 1)
    optimizer: str = "adam"
    learning_rate: float = None  # None: 1e-3, or what the architecture compiled with
    weight_decay: float = None  # None: 1e-4 for adamw, none otherwise
    momentum: float = 0.9  # sgd
    nesterov: bool = False  # sgd
    schedule: str = "constant"
    warmup: float = 0.0  # linear warm-up: a fraction of all steps if < 1, else a step count
    clip_norm: float = None
    label_smoothing: float = 0.0
    early_stopping: int = None  # patience in epochs; restores the best weights
    monitor: str = "val_loss"
    augment: tuple = ()
    precision: str = "float32"
    jit: str = "auto"
    checkpoint_every: int = 1  # epochs between checkpoints (0: none)
    distribute: str = "none"
    processes: int = 1  # --distribute data in this many processes (core.proc.launch)
    sync_batchnorm: bool = False  # several processes: BatchNorm by the global batch's moments (torch, TF)
    tensorboard: bool = False  # logs in RUN/tensorboard
    fine_tune_after: int = None  # with --freeze backbone: unfreeze after N epochs (core/engine/transfer.py)
    fine_tune_factor: float = 0.1  # ... and train on at learning rate x this factor
    standardize_targets: bool = True  # regression: learn standardized targets, scaled back inside the model

    def validate(self):
        _at_least(self, "epochs", 1)
        _at_least(self, "batch_size", 1)
        _at_least(self, "steps_per_epoch", 1)
        _at_least(self, "steps_per_execution", 1)
        _at_least(self, "early_stopping", 1)
        _at_least(self, "checkpoint_every", 0)
        _at_least(self, "processes", 1)
        _at_least(self, "fine_tune_after", 1)
        if self.fine_tune_after is not None and self.fine_tune_after >= self.epochs:
            raise UsageError(f"--fine-tune-after {self.fine_tune_after} must be less than --epochs ({self.epochs})")
        if not 0 < self.fine_tune_factor <= 1:
            raise UsageError(f"--fine-tune-factor must lie in (0, 1], got {self.fine_tune_factor}")
        for name in ("learning_rate", "clip_norm"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise UsageError(f"{flag(name)} must be positive, got {value}")
        for name in ("weight_decay", "warmup"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise UsageError(f"{flag(name)} must not be negative, got {value}")
        if not 0 <= self.label_smoothing < 1:
            raise UsageError(f"--label-smoothing must lie in [0, 1), got {self.label_smoothing}")
        for name, valid in (
            ("optimizer", OPTIMIZERS),
            ("schedule", SCHEDULES),
            ("precision", PRECISIONS),
            ("jit", JIT),
            ("distribute", DISTRIBUTE),
        ):
            value = getattr(self, name)
            if value not in valid:
                raise UsageError(f"{flag(name)} {value!r}{did_you_mean(value, valid)}; valid: {choices_text(valid)}")
        for item in self.augment:
            if item not in AUGMENT:
                raise UsageError(f"--augment {item!r}{did_you_mean(item, AUGMENT)}; valid: {choices_text(AUGMENT)}")
        return self

    def to_dict(self):
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


# The type of fields whose default is None.
_TYPES = {
    "steps_per_epoch": 0,
    "learning_rate": 0.0,
    "weight_decay": 0.0,
    "clip_norm": 0.0,
    "early_stopping": 0,
    "fine_tune_after": 0,
}


def make_options(given=None, source="option"):
    """TrainingOptions from a mapping of names to values or text; unknown names are usage errors."""
    names = [f.name for f in fields(TrainingOptions)]
    typed = {}
    for key, value in (given or {}).items():
        key = key.replace("-", "_")
        if key not in names:
            raise UsageError(
                f"unknown training {source} {key!r}{did_you_mean(key, names)}; valid: {choices_text(names)}"
            )
        if value is None:
            typed[key] = None
            continue
        default = getattr(TrainingOptions, key)
        try:
            typed[key] = coerce(value, _TYPES.get(key, default) if default is None else default)
        except ValueError as exc:
            raise UsageError(f"{flag(key)} {value!r}: {exc}") from None
    return TrainingOptions(**typed).validate()


def flag(name):
    return "--" + name.replace("_", "-")


def _at_least(opts, name, low):
    value = getattr(opts, name)
    if value is not None and value < low:
        raise UsageError(f"{flag(name)} must be at least {low}, got {value}")
