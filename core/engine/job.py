"""A training job: its record resolved (plugins, data, spec, devices) and its model built, resumed or
transferred, and compiled."""

import dataclasses
import importlib.util
import sys

import numpy as np

from core import backend as backends
from core.data import check_dataset, first_batch, is_pair, spec_of, targets_for
from core.engine import distributed, targets, transfer
from core.engine.backends import for_backend
from core.engine.callbacks import CHECKPOINT_FILE, check_monitor, logged_metrics
from core.engine.compiling import compile_for_task, steps_per_epoch
from core.engine.datasets import check_token_ids, loader_options, task_for, vocab_hint, with_inferred_vocab
from core.engine.options import TrainingOptions, make_options
from core.errors import KerastackError, UsageError
from core.plugins import get_plugin_host
from core.runs import load_model, load_run
from core.runs.run import config_modules, is_custom_module


@dataclasses.dataclass
class Job:
    """One training, resolved from its record: options, plugins, data and spec, under its backend."""

    record: dict
    opts: object
    host: object
    arch_entry: object
    hparams: dict
    owner: str  # the dataset plugin, as errors name it
    keras: object
    dataset: object
    spec: object
    initial_epoch: int
    distribution: object
    engine: object  # the backend's way to train (core.engine.backends)
    callbacks: list
    interrupts: object = None

    @property
    def arch(self):
        return self.arch_entry.name

    @property
    def data(self):
        return self.record["dataset"]["name"]

    @property
    def backend(self):
        return self.record["training"]["backend"]

    @property
    def seed(self):
        return self.record["training"]["seed"]


def prepare(record, resume_from):
    """Load the plugins and the dataset, select the backend, seed it, and work out the DataSpec."""
    training = record["training"]
    given = {k: v for k, v in training.items() if k not in ("backend", "seed", "callbacks")}
    given.setdefault("sync_batchnorm", True)  # a run recorded before the option trained synchronized
    opts = make_options(given)
    host = get_plugin_host(record["plugins"])
    arch_entry = host.registry("architecture").get(record["architecture"]["name"])
    data_entry = host.registry("dataset").get(record["dataset"]["name"])
    hparams = arch_entry.options(record["architecture"]["options"])
    data_options = data_entry.options(record["dataset"]["options"])

    # The dataset loads before keras is imported, so that its errors come without the wait; a
    # loader that needs keras (a PyDataset) imports it under the run's backend.
    backends.select(training["backend"])
    engine = for_backend(training["backend"])
    batch = engine.loader_batch_size(opts)  # a streamed split: this process's batches
    dataset = data_entry.call(**loader_options(data_entry.defaults, data_options, batch))
    owner = f"{data_entry.owner} from {data_entry.plugin.label()}"
    check_dataset(dataset, owner)
    keras = backends.use(training["backend"])
    initial_epoch = resume_from["epoch"] if resume_from else 0
    # A resumed run reseeds with its epoch: its shuffles differ from an uninterrupted run's, but
    # the same interruption resumed twice gives the same result.
    keras.utils.set_random_seed(training["seed"] + initial_epoch)
    distribution = engine.distribution(keras, opts)
    dataset = engine.for_devices(dataset, opts)
    spec = spec_of(dataset, owner)
    spec = dataclasses.replace(spec, task=task_for(spec, arch_entry.extra["tasks"], arch_entry.name, data_entry.name))
    spec = with_inferred_vocab(spec, dataset)
    _check_extras(opts, dataset, data_entry.name)
    # Plugin callbacks are made before anything is written, so that a failing factory leaves no run.
    plugin_callbacks = [_make_callback(keras, host.registry("callback").get(n)) for n in training["callbacks"]]
    return Job(
        record=record,
        opts=opts,
        host=host,
        arch_entry=arch_entry,
        hparams=hparams,
        owner=owner,
        keras=keras,
        dataset=dataset,
        spec=spec,
        initial_epoch=initial_epoch,
        distribution=distribution,
        engine=engine,
        callbacks=plugin_callbacks,
    )


def _check_extras(opts, dataset, data):
    """Refuse --tensorboard without its package, --augment on streamed data."""
    if opts.tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise UsageError(
            "--tensorboard needs the tensorboard package (tf.summary writes through it): pip install tensorboard"
        )
    if opts.augment and not is_pair(dataset.train):
        raise UsageError(f"--augment works on datasets of arrays; dataset {data!r} streams batches")


def _build(keras, entry, spec, hparams, data, hint=""):
    """The architecture's model; an error names the architecture, its plugin and the data it was
    built for (an architecture that cannot take the dataset's input shape fails here), and ends
    with ``hint`` (what the dataset could set), if any."""
    try:
        model = entry.call(spec, **hparams)
    except KerastackError as exc:
        hint = f"; {hint}" if hint else ""
        raise type(exc)(
            f"{exc} [building for dataset {data!r}: input shape {spec.input_shape}, {spec.task}]{hint}"
        ) from exc
    if not isinstance(model, keras.Model):
        raise KerastackError(
            f"{entry.owner} from {entry.plugin.label()}: build() returned "
            f"{type(model).__name__}, expected a keras.Model"
        )
    return model


def _make_callback(keras, entry):
    cb = entry.call()
    if not isinstance(cb, keras.callbacks.Callback):
        raise KerastackError(
            f"{entry.owner} from {entry.plugin.label()} returned {type(cb).__name__}, "
            "expected a keras.callbacks.Callback"
        )
    return cb


def new_model(job):
    """Build, initialize (--init-from, --freeze, --lora-rank), scale to the targets (regression) and
    compile the model; fill in the record's ``transfer``, ``spec`` and ``custom_modules``."""
    record, spec, opts = job.record, job.spec, job.opts
    model = _build(job.keras, job.arch_entry, spec, job.hparams, job.data, vocab_hint(spec, job.dataset))
    if job.dataset.vocab_size is None and spec.vocab_size is not None and _embeds(job.keras, model):
        check_token_ids(job.dataset, spec.vocab_size, job.owner)
    source = load_run(record["transfer"]["init_from"]) if record["transfer"]["init_from"] else None
    record["transfer"] = _transfer(model, source, record["transfer"]["freeze"], record["transfer"]["lora_rank"])
    model, scaling = targets.standardize(  # regression: the network learns standardized targets
        job.keras,
        model,
        spec,
        job.dataset.train,
        enabled=opts.standardize_targets,
        processes=opts.processes,
        where=f"{job.arch!r} on {job.data!r}: ",
    )
    train_size = len(job.dataset.train[0]) if is_pair(job.dataset.train) else len(job.dataset.train) * opts.batch_size
    total_steps = steps_per_epoch(opts, train_size) * opts.epochs
    extra_modules = compile_for_task(job.keras, model, spec.task, job.arch, opts, total_steps)
    record["spec"] = {
        "input_shape": list(spec.input_shape),
        "num_classes": spec.num_classes,
        "task": spec.task,
        "class_names": list(spec.class_names or []) or None,
        "input_dtype": spec.input_dtype,
        "vocab_size": spec.vocab_size,
        "target_shape": list(spec.target_shape) if spec.target_shape is not None else None,
    }
    if scaling is not None:
        record["spec"]["target_scaling"] = scaling
    record["custom_modules"] = sorted(set(custom_modules(model)) | set(extra_modules))
    return model


def resumed_model(job, out):
    """The interrupted run's last checkpoint, with its optimizer state."""
    record = job.record
    modules = record.get("custom_modules", ())
    model = load_model(out / CHECKPOINT_FILE, modules, transfer=record.get("transfer"), epoch=job.initial_epoch)
    # Runs written before non-layer objects were collected gain their modules here.
    record["custom_modules"] = sorted(set(modules) | set(custom_modules(model)))
    record.setdefault("resumed", []).append(job.initial_epoch)
    if distributed.world().writer:  # the other ranks resume a copy in a private folder, gone after
        print(f"resuming {out} at epoch {job.initial_epoch + 1} of {job.opts.epochs}")
    return model


def _transfer(model, source, freeze, lora_rank):
    """Apply --init-from, --freeze and --lora-rank; what was done, for run.json."""
    if source is None and freeze == "none" and lora_rank is None:
        return None
    initialized = transfer.init_from(model, source.model) if source is not None else set()
    out = {"init_from": str(source.path) if source else None, "freeze": freeze, "lora_rank": lora_rank}
    if source is not None:
        out["matched_layers"] = len(initialized)
        out["layers"] = len(transfer.weighted_layers(model))
        out["initialized_layers"] = transfer.initialized_positions(model, initialized)  # to set them again
        print(
            f"init-from {source.path}: {out['matched_layers']} of {out['layers']} layers matched "
            "(name and weight shapes)"
        )
    transfer.freeze(model, freeze, initialized)
    if lora_rank is not None:
        out["lora_layers"] = transfer.enable_lora(model, int(lora_rank), initialized)
    return out


def recompile(model, job, opts, epochs):
    """Compile ``model`` again, as before but with the optimizer of ``opts`` over ``epochs`` epochs."""
    from core.engine.compiling import make_optimizer

    train_size = len(job.dataset.train[0]) if is_pair(job.dataset.train) else len(job.dataset.train) * opts.batch_size
    config = dict(model._compile_config.config)
    config["optimizer"] = make_optimizer(job.keras, opts, steps_per_epoch(opts, train_size) * epochs)
    model.compile(**config)
    model.steps_per_execution = opts.steps_per_execution
    job.engine.sync_gradients(model)  # layers just unfrozen: their gradients too


def monitor_without_validation(job):
    """A dataset with no validation split (``validation=0``) logs no ``val_`` metric: best.keras and
    early stopping then follow the training metric of the same name, said once and recorded."""
    monitor = job.opts.monitor
    if job.dataset.validation is not None or not monitor.startswith("val_"):
        return
    job.opts = dataclasses.replace(job.opts, monitor=monitor.removeprefix("val_"))
    job.record["training"]["monitor"] = job.opts.monitor
    print(
        f"kerastack: note: dataset {job.data!r} has no validation split: best.keras and early stopping "
        f"follow {job.opts.monitor!r} on the training data instead of {monitor!r}",
        file=sys.stderr,
    )


def check_job_monitor(model, job):
    """Refuse a ``--monitor`` the training will not log, before anything is written. The default
    (``val_loss``) is checked only with ``--early-stopping``: alone, it means best.keras if logged."""
    opts = job.opts
    if opts.monitor == TrainingOptions.monitor and not opts.early_stopping:
        return
    import keras

    x, y = first_batch(targets_for(job.spec.task, job.dataset.train))
    batch = keras.tree.map_structure(lambda a: np.asarray(a[: opts.batch_size]), (x,) if y is None else (x, y))
    names = logged_metrics(model, batch, job.dataset.validation is not None)
    custom_step = type(model).train_step is not keras.Model.train_step

    def step_logs():  # the names a custom train step's model logs, from one evaluation step
        return list(model.evaluate(*batch, verbose=0, return_dict=True))

    check_monitor(opts.monitor, names, f"what {job.arch!r} logs on {job.data!r}", step_logs if custom_step else None)


def _embeds(keras, model):
    """Whether the model looks token ids up in an Embedding layer."""
    layers = model._flatten_layers(include_self=False, recursive=True)
    return any(isinstance(layer, keras.layers.Embedding) for layer in layers)


def custom_modules(model):
    """Modules (other than Keras's) that define the model's custom objects; imported again at load.

    Those of its layers' classes, and of every object in the model's serialized config and compile
    config: a custom constraint, regularizer, initializer, activation, loss, metric or schedule
    registered in a plugin's own module is found too, not only a custom layer."""
    import keras

    objects = [model, *model._flatten_layers(include_self=False, recursive=True)]
    modules = {type(o).__module__ for o in objects if is_custom_module(type(o).__module__)}
    try:
        config = keras.saving.serialize_keras_object(model)
    except Exception:  # noqa: BLE001 - a model that cannot be saved: the first checkpoint says why
        config = None
    return sorted(modules | set(config_modules(config)))
