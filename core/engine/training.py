"""``train()``: build an architecture for a dataset, fit it under one backend, write the run."""

import contextlib
import dataclasses
import importlib.util
import os
import secrets
import shlex
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core import backend as backends
from core.backend import dtype_policy
from core.child import call_in_backend
from core.data import batches, check_dataset, first_batch, is_pair, spec_of, targets_for
from core.engine import distributed, launch, tf_data, transfer
from core.engine.callbacks import (
    BEST_FILE,
    CHECKPOINT_FILE,
    CHECKPOINT_STATE,
    Interrupts,
    check_monitor,
    checkpointer,
    higher_is_better,
    history_writer,
    interrupt_checker,
    logged_metrics,
    nan_stopper,
)
from core.engine.compiling import compile_for_task, steps_per_epoch
from core.engine.datasets import (
    check_token_ids,
    loader_options,
    predict_batches,
    recorded_data_options,
    task_for,
    vocab_hint,
    with_inferred_vocab,
)
from core.engine.options import TrainingOptions, make_options
from core.engine.snapshots import BackgroundWriter
from core.engine.tracking import Tracker, tracking_request
from core.engine.tracking import stop as stop_tracking
from core.errors import KerastackError, UsageError, one_line
from core.files import atomic_path, read_json, remove_partials, write_json
from core.plugins import get_plugin_host
from core.runs import (
    HISTORY_FILE,
    METRICS_FILE,
    MODEL_FILE,
    RUN_FILE,
    Run,
    RunLock,
    live_writer,
    load_model,
    load_run,
    new_run_dir,
)
from core.runs.plots import PREDICTIONS_FILE
from core.runs.run import config_modules, is_custom_module
from core.versions import versions


def train(
    arch: str | None = None,
    data: str | None = None,
    *,
    backend: str | None = None,
    hparams: Mapping[str, Any] | None = None,
    data_options: Mapping[str, Any] | None = None,
    callbacks: Sequence[str] = (),
    out: str | os.PathLike | None = None,
    runs_dir: str | os.PathLike = "runs",
    seed: int | None = None,
    plugins: Sequence[str] = (),
    verbose: str | int = "auto",
    init_from: str | os.PathLike | None = None,
    freeze: str = "none",
    lora_rank: int | None = None,
    resume: str | os.PathLike | None = None,
    track: str | Mapping[str, Any] | None = None,
    **training: Any,
) -> Run:
    """Train architecture ``arch`` on dataset ``data``; return the finished :class:`core.runs.Run`.

    ``hparams`` and ``data_options`` map names to values or to text (as from ``--hp k=v``); they are
    checked against the plugins' signatures. ``training`` takes the fields of
    :class:`core.engine.options.TrainingOptions` (``epochs``, ``batch_size``, ``optimizer``, ``schedule``,
    ``early_stopping``, ``precision``, …). ``backend`` is ``tensorflow``, ``jax`` or ``torch`` (default:
    the one this process runs, else the configured one); ``out`` the run directory (default: a new
    one under ``runs_dir``); ``seed`` the random seed (default: random, recorded); ``plugins`` the
    ``--plugin`` modules or files to load; ``callbacks`` names of plugin callbacks; ``verbose``
    Keras's ``fit`` verbosity. Transfer learning: ``init_from`` (a run directory) copies every
    matching layer's weights, ``freeze="backbone"`` trains only the new head, ``lora_rank`` trains
    LoRA adapters on the pretrained Dense/EinsumDense/Embedding layers. ``resume`` (a run directory)
    continues an interrupted run from its last checkpoint, with the same settings (the other
    arguments are then unused). ``track="mlflow"`` (or a ``[track]`` table: ``to``, ``experiment``,
    ``uri``) logs the run to MLflow (see :mod:`core.engine.tracking`).
    An ``out`` that holds a run stopped (interrupted or failed) before its first checkpoint is started again, its old files replaced; any other run there is refused.
    Ctrl-C stops at the next batch end (twice: at once), marks run.json ``interrupted`` and says how
    to continue, then raises ``KeyboardInterrupt``. If this process already runs keras under another backend, the training runs in a child process.
    """
    if resume is not None:
        return _resume(Path(resume), verbose)
    opts = make_options(training)
    arch_entry, data_entry = _plugin_entries(plugins, arch, data, callbacks)
    hparams, data_options = arch_entry.options(hparams), data_entry.options(data_options)
    data_options = recorded_data_options(data_entry.defaults, data_options, opts.batch_size, data_entry.owner)
    _check_transfer(freeze, lora_rank, init_from)
    if opts.fine_tune_after and freeze != "backbone":
        raise UsageError(f"--fine-tune-after {opts.fine_tune_after} needs --freeze backbone (got --freeze {freeze})")
    backend = backends.resolve(backend)
    _check_backend(opts, backend)
    processes = distributed.check(opts, backend)
    if distributed.world(backend).size > 1 and (seed is None or out is None):
        raise UsageError("under a launcher every process needs the same --seed and --out: set both")
    out = Path(out) if out else new_run_dir(runs_dir, arch, data)
    _check_out(out)
    record = {
        "status": None,  # "running" once run.json is written
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "architecture": _plugin_record(arch_entry, hparams),
        "dataset": _plugin_record(data_entry, data_options),
        "training": {**_training_request(opts, backend, seed, callbacks), "processes": processes},
        "transfer": _transfer_request(init_from, freeze, lora_rank),
        "initial_weights": transfer.weights_source(hparams, init_from),
        "plugins": [_absolute(p) for p in plugins],
        "versions": versions(),
    }
    tracking = tracking_request(track, out)
    if tracking:
        record["tracking"] = tracking
    if processes > 1:
        record["distributed"] = distributed.describe(backend, processes)
    return _dispatch(record, out, verbose, resume_from=None)


def _plugin_entries(plugins, arch, data, callbacks):
    """The registry entries of the architecture and the dataset; an error for any unknown name."""
    host = get_plugin_host(plugins)
    arch_entry, data_entry = host.registry("architecture").get(arch), host.registry("dataset").get(data)
    for name in callbacks:
        host.registry("callback").get(name)
    return arch_entry, data_entry


def _training_request(opts, backend, seed, callbacks):
    """The training settings, as run.json records them (a random seed is drawn and kept)."""
    return {
        "backend": backend,
        "seed": secrets.randbelow(2**31) if seed is None else int(seed),
        **opts.to_dict(),
        "callbacks": list(callbacks),
    }


def _transfer_request(init_from, freeze, lora_rank):
    """The transfer settings asked for, as run.json records them until the model is built."""
    return {
        "init_from": str(Path(init_from).resolve()) if init_from else None,
        "freeze": freeze,
        "lora_rank": None if lora_rank is None else int(lora_rank),
    }


def _check_transfer(freeze, lora_rank, init_from):
    """Refuse bad --freeze, --lora-rank and --init-from values before anything is written."""
    if freeze not in transfer.FREEZE:
        raise UsageError(f"--freeze {freeze!r}: valid: {', '.join(transfer.FREEZE)}")
    if lora_rank is not None and int(lora_rank) < 1:
        raise UsageError(f"--lora-rank must be at least 1, got {lora_rank}")
    if init_from is not None:
        load_run(init_from)  # fail early on a bad directory


def _check_backend(opts, backend):
    """Refuse training options the backend cannot honour."""
    if opts.steps_per_execution > 1 and backend == "torch":
        raise UsageError(
            f"--steps-per-execution {opts.steps_per_execution}: the torch backend runs one "
            "batch per call (Keras refuses more); use 1, or the jax or tensorflow backend"
        )


# The files of a run that stopped before its first checkpoint, replaced when it is started again.
_RESTART_FILES = (RUN_FILE, HISTORY_FILE, BEST_FILE, METRICS_FILE, PREDICTIONS_FILE, "tensorboard")


def _check_out(out):
    """Refuse an ``--out`` that holds a run, unless that run stopped (interrupted, failed, or killed:
    "running" with no live writer) before its first checkpoint: such a folder is started again (its
    files replaced), as its hint says."""
    if not (out / RUN_FILE).exists():
        return
    try:
        status = read_json(out / RUN_FILE, "run record").get("status")
    except KerastackError:
        status = None
    kept = [name for name in (CHECKPOINT_STATE, CHECKPOINT_FILE, MODEL_FILE) if (out / name).exists()]
    if status == "running" and live_writer(out) in (None, os.getpid()):
        status = "killed"  # SIGKILL leaves "running" behind, and a lock whose writer is gone
    if status in ("interrupted", "failed", "killed") and not kept:
        return
    raise UsageError(f"{out} already holds a run; choose another --out (or --resume it)")


def _replace_stopped_run(out):
    """Remove the files of a run that stopped before its first checkpoint, where a new run starts
    (checked again here, under the lock)."""
    _check_out(out)
    for name in _RESTART_FILES:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def _restart_command(out):
    return f"kerastack train --config {shlex.quote(str(out))} --out {shlex.quote(str(out))}"


def _resume(out, verbose):
    record = load_run(out).record
    if record.get("status") == "complete":
        raise UsageError(f"{out}: the run is complete; nothing to resume")
    if not (out / CHECKPOINT_STATE).exists():
        raise KerastackError(
            f"{out}: no checkpoint to resume from (it stopped before its first checkpoint); start it "
            f"again with the same command, or: {_restart_command(out)}"
        )
    state = read_json(out / CHECKPOINT_STATE, "checkpoint state")
    record["status"] = None  # "running" again once run.json is written
    return _dispatch(record, out, verbose, resume_from=state)


def _dispatch(record, out, verbose, resume_from):
    backend = record["training"]["backend"]
    if launch.wanted(record):
        launch.run(record, out, verbose, resume_from)
        return load_run(out)
    if not backends.can_use(backend):
        try:
            call_in_backend(
                backend,
                _execute_json,
                dict(record=record, out=str(out), verbose=verbose, resume_from=resume_from),
            )
        except KeyboardInterrupt:  # the child is stopped: mark its run if it could not
            _mark_interrupted(out, _readable_record(out))
            raise
        return load_run(out)
    return _execute(record, out, verbose, resume_from)


def _readable_record(out):
    try:
        return read_json(out / RUN_FILE, "run record")
    except KerastackError:
        return {}


def _execute_json(record, out, verbose, resume_from):
    return str(_execute(record, Path(out), verbose, resume_from).path)


def _execute(record, out, verbose, resume_from):
    """Run the training described by ``record`` in this process (its backend), holding the run's lock.

    A run that fails before its record is written (a dataset, architecture or callback plugin that
    fails, data the checks refuse) leaves nothing behind: the folders this call made are removed.
    One that fails later keeps its record, marked ``failed`` with the error, and its checkpoints;
    one stopped by Ctrl-C is marked ``interrupted``, with a line saying how to continue it.
    """
    with distributed.rank_folder(out, resume_from) as folder:  # rank 0's is the run folder
        run = _execute_in(record, folder, verbose, resume_from)
    run.path = out  # the other ranks' folder is gone: the run is rank 0's
    return run


def _execute_in(record, out, verbose, resume_from):
    if not distributed.world().writer:  # one progress bar and one MLflow run: rank 0's
        verbose, record = 0, {k: v for k, v in record.items() if k != "tracking"}
    created = _missing_ancestor(out)
    out.mkdir(parents=True, exist_ok=True)
    with Interrupts() as interrupts:
        try:
            with RunLock(out):
                remove_partials(out)  # a killed writer's temporary files
                model = _train_locked(record, out, verbose, resume_from, interrupts)
        except BaseException as exc:
            if resume_from is None and not (out / RUN_FILE).exists():
                if created is not None:
                    shutil.rmtree(created, ignore_errors=True)
            elif record.get("status") == "running":  # run.json is this call's
                if isinstance(exc, KeyboardInterrupt):
                    _mark_interrupted(out, record)
                else:
                    _mark_failed(out, record, exc)
                stop_tracking(record, exc)
            raise
    run = load_run(out)
    run._model = model
    return run


@dataclasses.dataclass
class _Job:
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


def _train_locked(record, out, verbose, resume_from, interrupts=None):
    job = _prepare(record, resume_from)
    job.interrupts = interrupts
    with job.distribution:
        if resume_from:
            with dtype_policy(job.opts.precision):  # the model's layers keep it; the process does not
                model = _resumed_model(job, out)
            rows = [r for r in load_run(out).history if int(r["epoch"]) <= job.initial_epoch]
            record.pop("error", None)
        else:
            with dtype_policy(job.opts.precision):  # the model's layers keep it; the process does not
                model, rows = _new_model(job), []
            _monitor_without_validation(job)
            _check_monitor(model, job)
            _replace_stopped_run(out)
        distributed.prepare_model(model, job.backend)
        record["status"] = "running"
        tracker = Tracker(record, out)  # only where the run folder is written
        tracker.start()
        write_json(out / RUN_FILE, record)
        trainable, total = transfer.parameter_counts(model)
        started = time.perf_counter()
        with BackgroundWriter() as writer:  # the epoch-end files, written off the training thread
            callbacks = _callbacks(job, out, rows, resume_from, writer)
            if not tracker.failed:  # next to history.csv: an epoch in the history is an epoch logged
                callbacks.insert(1, tracker.callback())
            history = transfer.fit_then_fine_tune(
                model, job, lambda: _fit(model, job, callbacks, verbose), lambda o, n: _recompile(model, job, o, n)
            )
        metrics = {
            "backend": job.backend,
            "epochs": job.initial_epoch + len(history.epoch),
            "seconds": round(time.perf_counter() - started, 3),
            "trainable_params": trainable,
            "total_params": total,
        }
        if "fine_tune_rate" in (record.get("transfer") or {}):  # --fine-tune-after: more trained from epoch N + 1
            metrics["fine_tuned_params"] = transfer.parameter_counts(model)[0]
        _check_finite(history, job.opts)
        metrics.update({k: float(v[-1]) for k, v in history.history.items() if v})
        _evaluate(model, job.dataset, job.spec, job.opts, metrics, out)
        _write_results(model, record, metrics, out)
    _plots(out)
    tracker.finish(metrics)
    if tracker.failed and tracker.entry:  # say in run.json why the MLflow run is incomplete
        write_json(out / RUN_FILE, record)
    return model


def _prepare(record, resume_from):
    """Load the plugins and the dataset, select the backend, seed it, and work out the DataSpec."""
    training = record["training"]
    opts = make_options({k: v for k, v in training.items() if k not in ("backend", "seed", "callbacks")})
    host = get_plugin_host(record["plugins"])
    arch_entry = host.registry("architecture").get(record["architecture"]["name"])
    data_entry = host.registry("dataset").get(record["dataset"]["name"])
    hparams = arch_entry.options(record["architecture"]["options"])
    data_options = data_entry.options(record["dataset"]["options"])

    # The dataset loads before keras is imported, so that its errors come without the wait; a
    # loader that needs keras (a PyDataset) imports it under the run's backend.
    backends.select(training["backend"])
    batch = distributed.loader_batch_size(opts, training["backend"])  # a streamed split: this process's batches
    dataset = data_entry.call(**loader_options(data_entry.defaults, data_options, batch))
    owner = f"{data_entry.owner} from {data_entry.plugin.label()}"
    check_dataset(dataset, owner)
    keras = backends.use(training["backend"])
    initial_epoch = resume_from["epoch"] if resume_from else 0
    # A resumed run reseeds with its epoch: its shuffles differ from an uninterrupted run's, but
    # the same interruption resumed twice gives the same result.
    keras.utils.set_random_seed(training["seed"] + initial_epoch)
    distribution = _distribution(keras, opts, training["backend"])
    if opts.distribute != "none" and training["backend"] == "jax":
        dataset = _trim_for_devices(dataset, distributed.local_devices())
    spec = spec_of(dataset, owner)
    spec = dataclasses.replace(spec, task=task_for(spec, arch_entry.extra["tasks"], arch_entry.name, data_entry.name))
    spec = with_inferred_vocab(spec, dataset)
    _check_extras(opts, dataset, data_entry.name)
    # Plugin callbacks are made before anything is written, so that a failing factory leaves no run.
    plugin_callbacks = [_make_callback(keras, host.registry("callback").get(n)) for n in training["callbacks"]]
    return _Job(
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


def _resumed_model(job, out):
    """The interrupted run's last checkpoint, with its optimizer state."""
    record = job.record
    modules = record.get("custom_modules", ())
    model = load_model(out / CHECKPOINT_FILE, modules, transfer=record.get("transfer"), epoch=job.initial_epoch)
    # Runs written before non-layer objects were collected gain their modules here.
    record["custom_modules"] = sorted(set(modules) | set(custom_modules(model)))
    record.setdefault("resumed", []).append(job.initial_epoch)
    print(f"resuming {out} at epoch {job.initial_epoch + 1} of {job.opts.epochs}")
    return model


def _new_model(job):
    """Build, initialize (--init-from, --freeze, --lora-rank) and compile the model; fill in the
    record's ``transfer``, ``spec`` and ``custom_modules``."""
    record, spec, opts = job.record, job.spec, job.opts
    model = _build(job.keras, job.arch_entry, spec, job.hparams, job.data, vocab_hint(spec, job.dataset))
    if job.dataset.vocab_size is None and spec.vocab_size is not None and _embeds(job.keras, model):
        check_token_ids(job.dataset, spec.vocab_size, job.owner)
    source = load_run(record["transfer"]["init_from"]) if record["transfer"]["init_from"] else None
    record["transfer"] = _transfer(model, source, record["transfer"]["freeze"], record["transfer"]["lora_rank"])
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
    }
    record["custom_modules"] = sorted(set(custom_modules(model)) | set(extra_modules))
    return model


def _recompile(model, job, opts, epochs):
    """Compile ``model`` again, as before but with the optimizer of ``opts`` over ``epochs`` epochs."""
    from core.engine.compiling import make_optimizer

    train_size = len(job.dataset.train[0]) if is_pair(job.dataset.train) else len(job.dataset.train) * opts.batch_size
    config = dict(model._compile_config.config)
    config["optimizer"] = make_optimizer(job.keras, opts, steps_per_epoch(opts, train_size) * epochs)
    model.compile(**config)
    model.steps_per_execution = opts.steps_per_execution
    distributed.sync_gradients(model, job.backend)  # layers just unfrozen: their gradients too


def _monitor_without_validation(job):
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


def _check_monitor(model, job):
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


def _callbacks(job, out, rows, resume_from, writer=None):
    """The core's callbacks (history, NaN stop, checkpoints, TensorBoard, early stopping), then the
    plugins'; ``writer`` writes the history and checkpoints in the background."""
    keras, opts = job.keras, job.opts
    best = resume_from.get("best") if resume_from else None
    cbs = distributed.log_reducer(job.backend) + [
        history_writer(out / HISTORY_FILE, rows, writer),
        nan_stopper(),
        checkpointer(out, opts.checkpoint_every, opts.monitor, best, writer),
    ]
    if opts.tensorboard:
        cbs.append(keras.callbacks.TensorBoard(log_dir=str(out / "tensorboard")))
    if opts.early_stopping:
        cbs.append(
            keras.callbacks.EarlyStopping(
                opts.monitor,
                patience=opts.early_stopping,
                restore_best_weights=True,
                verbose=1,
                mode="max" if higher_is_better(opts.monitor) else "min",  # as best.keras judges it
            )
        )
    # Last: an interrupted epoch's history and checkpoint are written before training stops.
    stop = [interrupt_checker(job.interrupts)] if job.interrupts is not None else []
    return cbs + job.callbacks + stop


def _write_results(model, record, metrics, out):
    """model.keras, metrics.json, the record marked complete; the checkpoints go (model.keras is the
    last state now)."""
    with atomic_path(out / MODEL_FILE) as tmp:
        model.save(tmp)
    write_json(out / METRICS_FILE, metrics)
    record["status"] = "complete"
    write_json(out / RUN_FILE, record)
    for name in (CHECKPOINT_FILE, CHECKPOINT_STATE):
        (out / name).unlink(missing_ok=True)


def _missing_ancestor(path):
    """The outermost folder of ``path`` (itself included) that does not exist yet, or None."""
    path = Path(path).absolute()
    if path.exists():
        return None
    while not path.parent.exists():
        path = path.parent
    return path


def _mark_interrupted(out, record):
    """Ctrl-C: run.json says ``interrupted`` (the files written stay whole), and a line on stderr
    says how to continue: ``--resume`` from the last checkpoint, or start again without one."""
    if record.get("status") != "running":
        return
    record["status"] = "interrupted"
    try:
        write_json(out / RUN_FILE, record)
    except OSError:
        pass
    try:
        epoch = read_json(out / CHECKPOINT_STATE, "checkpoint state")["epoch"]
    except (KerastackError, KeyError, TypeError):
        epoch = None
    if epoch is None:
        hint = f"interrupted before its first checkpoint; start it again with: {_restart_command(out)}"
    else:
        resume = f"kerastack train --resume {shlex.quote(str(out))}"
        hint = f"interrupted; continue it from its checkpoint after epoch {epoch} with: {resume}"
    print(f"kerastack: {out} {hint}", file=sys.stderr)


def _mark_failed(out, record, exc):
    """Record in run.json that the run stopped on an error (the files it wrote stay whole)."""
    record["status"] = "failed"
    record["error"] = " ".join(f"{type(exc).__name__}: {exc}".split())[:500]
    try:
        write_json(out / RUN_FILE, record)
    except OSError:
        pass  # the original error is what the user needs to see


def _plots(out):
    """curves.png and confusion.png; a plotting failure must not fail a finished run."""
    from core.runs.plots import write_run_plots

    try:
        write_run_plots(out)
    except Exception as exc:  # noqa: BLE001
        print(f"kerastack: warning: could not draw the plots of {out}: {type(exc).__name__}: {exc}", file=sys.stderr)


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


def _distribution(keras, opts, backend):
    """A context that trains on all devices (``--distribute``), or does nothing."""

    if distributed.world(backend).size > 1:
        return distributed.join(keras, backend)
    if opts.distribute == "none" or backend == "torch":  # torch: one process, one device
        return contextlib.nullcontext()
    if backend == "tensorflow":
        import tensorflow as tf

        # MirroredStrategy() alone takes the GPUs, or a single CPU: name the CPUs when there is no GPU.
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        if opts.batch_size % len(devices):
            raise UsageError(f"--batch-size {opts.batch_size} must be a multiple of the {len(devices)} devices")
        return tf.distribute.MirroredStrategy([d.name for d in devices]).scope()
    devices = keras.distribution.list_devices()
    if opts.batch_size % len(devices):
        raise UsageError(f"--batch-size {opts.batch_size} must be a multiple of the {len(devices)} devices")
    if opts.distribute == "data":
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    else:
        mesh = keras.distribution.DeviceMesh((1, len(devices)), ("batch", "model"), devices=devices)
        layout = keras.distribution.LayoutMap(mesh)
        layout[".*dense.*kernel"] = (None, "model")
        layout[".*embedding.*embeddings"] = (None, "model")
        keras.distribution.set_distribution(keras.distribution.ModelParallel(layout_map=layout, batch_dim_name="batch"))
    return contextlib.nullcontext()


def _trim_for_devices(dataset, devices):
    """JAX shards every batch across the devices, the last partial one too: trim each split to a
    multiple of the device count (at most ``devices - 1`` samples dropped per split)."""

    def trim(split):
        if not is_pair(split):
            return split
        n = len(split[0]) - len(split[0]) % devices
        return split[0][:n], None if split[1] is None else split[1][:n]

    return dataclasses.replace(
        dataset, train=trim(dataset.train), validation=trim(dataset.validation), test=trim(dataset.test)
    )


def _fit(model, job, callbacks, verbose):
    from core.engine.augment import augmented

    dataset, opts, spec, initial_epoch = job.dataset, job.opts, job.spec, job.initial_epoch
    train, val = targets_for(spec.task, dataset.train), targets_for(spec.task, dataset.validation)
    common = dict(epochs=opts.epochs, callbacks=callbacks, verbose=verbose, initial_epoch=initial_epoch)
    if opts.steps_per_epoch:
        common.update(steps_per_epoch=opts.steps_per_epoch, validation_steps=opts.steps_per_epoch)
    if job.interrupts is not None:
        job.interrupts.check()  # a Ctrl-C that Python could not raise (in a gc callback) stops here
        job.interrupts.in_fit = True
    try:
        if is_pair(train):
            if opts.steps_per_epoch:  # a quick check: no more samples than the steps will use
                n = opts.steps_per_epoch * opts.batch_size
                train = (train[0][:n], None if train[1] is None else train[1][:n])
                val = None if val is None else (val[0][:n], None if val[1] is None else val[1][:n])
            val = tuple(val) if val is not None else None
            if opts.distribute == "data" and not opts.augment:  # each process its shard of each batch
                stream = distributed.shard(job.keras, train, opts, job.seed, initial_epoch, job.backend)
                size = distributed.eval_batch_size(opts, job.backend)
                common["callbacks"] = [stream.callback, *callbacks]
                return model.fit(stream, validation_data=val, validation_batch_size=size, **common)
            if opts.augment:
                stream = augmented(train[0], train[1], opts.batch_size, opts.augment, job.seed + initial_epoch)
                return model.fit(stream, validation_data=val, **common)
            if job.backend == "tensorflow" and opts.distribute == "none":  # one iterator, not 4 an epoch
                seed = job.seed + initial_epoch
                fed = tf_data.fit_arguments(train, val, opts.batch_size, seed, model.steps_per_execution)
                if fed is not None:
                    return model.fit(**{**common, **fed})
            return model.fit(train[0], train[1], batch_size=opts.batch_size, validation_data=val, **common)
        if opts.distribute == "data":
            train = distributed.shard_stream(job.keras, train, job.backend)
        return model.fit(train, validation_data=val, **common)
    except (KerastackError, KeyboardInterrupt):
        raise
    except Exception as exc:
        raise KerastackError(
            f"training {job.arch!r} on {job.data!r} (input shape {spec.input_shape}) failed: "
            f"{one_line(exc, first=True)}"
        ) from exc
    finally:
        if job.interrupts is not None:
            job.interrupts.in_fit = False


def _check_finite(history, opts):
    losses = history.history.get("loss", [])
    if losses and not np.isfinite(losses[-1]):
        raise KerastackError(
            f"training diverged: the loss became {losses[-1]} at epoch {len(losses)}; try a lower "
            f"--learning-rate (now {opts.learning_rate or 'the default'}), --clip-norm 1.0, "
            "--warmup 0.1, or --precision float32"
        )


def _evaluate(model, dataset, spec, opts, metrics, out):
    """Test metrics into ``metrics``; predictions.npz (labels, predicted classes) for classification."""
    if dataset.test is not None:
        test = targets_for(spec.task, dataset.test)
        if is_pair(test):
            size = distributed.eval_batch_size(opts)
            result = model.evaluate(test[0], test[1], batch_size=size, verbose=0, return_dict=True)
        else:
            result = model.evaluate(test, verbose=0, return_dict=True)
        metrics.update({f"test_{k}": float(v) for k, v in result.items()})
    if spec.task == "classification":
        _, split = dataset.evaluation_split()
        # Batch by batch, keeping labels only: a streamed split is never all in memory.
        y_true, y_pred = [], []
        for _, y, outputs in predict_batches(model, batches(split, 256)):
            if y is None:
                return
            y_true.append(np.asarray(y).reshape(-1))
            y_pred.append(outputs.argmax(-1).reshape(-1))
        if y_true:
            with atomic_path(out / PREDICTIONS_FILE) as tmp, open(tmp, "wb") as f:
                np.savez(f, y_true=np.concatenate(y_true), y_pred=np.concatenate(y_pred))


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


def _absolute(plugin):
    """``--plugin`` files are recorded with absolute paths so the run exports from any directory."""
    return str(Path(plugin).resolve()) if plugin.endswith(".py") or os.sep in plugin else plugin


def _plugin_record(entry, options):
    info = entry.plugin
    out = {"name": entry.name, "plugin": info.name, "origin": info.origin}
    if info.package:
        out.update(package=info.package, version=info.version)
    out["options"] = options
    return out


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


def _make_callback(keras, entry):
    cb = entry.call()
    if not isinstance(cb, keras.callbacks.Callback):
        raise KerastackError(
            f"{entry.owner} from {entry.plugin.label()} returned {type(cb).__name__}, "
            "expected a keras.callbacks.Callback"
        )
    return cb
