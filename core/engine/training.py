"""``train()``: build an architecture for a dataset, fit it under one backend, write the run."""

import os
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from core import backend as backends
from core.backend import dtype_policy
from core.engine import distributed, transfer
from core.engine.callbacks import Interrupts
from core.engine.datasets import recorded_data_options
from core.engine.fitting import check_finite, evaluate, fit, fit_callbacks, plots
from core.engine.job import check_job_monitor, monitor_without_validation, new_model, prepare, recompile, resumed_model
from core.engine.options import make_options
from core.engine.record import check_request, new_record, plugin_entries, training_request, transfer_request
from core.engine.rundir import (
    check_out,
    mark_failed,
    mark_interrupted,
    missing_ancestor,
    processes_failed,
    readable_record,
    replace_stopped_run,
    resume_point,
    write_results,
)
from core.engine.sanity import check_frozen_backbone
from core.engine.snapshots import BackgroundWriter
from core.errors import Interrupted
from core.files import remove_partials, write_json
from core.proc import launch
from core.proc.child import call_in_backend
from core.runs import RUN_FILE, Run, RunLock, live_writer, load_run, new_run_dir
from core.tracking import Tracker, tracking_request
from core.tracking import stop as stop_tracking


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
    ``uri``) logs the run to MLflow (see :mod:`core.tracking`).
    An ``out`` that holds a run stopped (interrupted or failed) before its first checkpoint is started again, its old files replaced; any other run there is refused.
    Ctrl-C or SIGTERM stops at the next batch end (twice: at once), marks run.json ``interrupted`` and
    says how to continue, then raises ``core.errors.Interrupted`` (a ``KeyboardInterrupt``). If this process already runs keras under another backend, the training runs in a child process.
    """
    if resume is None and distributed.elastic_restart(out):  # torchrun restarted the group
        resume = out
    if resume is not None:
        return _resume(Path(resume), verbose)
    opts = make_options(training)
    arch_entry, data_entry = plugin_entries(plugins, arch, data, callbacks)
    hparams, data_options = arch_entry.options(hparams), data_entry.options(data_options)
    check_frozen_backbone(arch_entry.name, hparams, freeze, init_from)
    data_options = recorded_data_options(data_entry.defaults, data_options, opts.batch_size, data_entry.owner)
    opts, backend = check_request(
        opts, backend, freeze=freeze, lora_rank=lora_rank, init_from=init_from, seed=seed, out=out
    )
    out = Path(out) if out else new_run_dir(runs_dir, arch, data)
    check_out(out)
    settings, asked = training_request(opts, backend, seed, callbacks), transfer_request(init_from, freeze, lora_rank)
    record = new_record(
        arch_entry, hparams, data_entry, data_options, settings, asked, plugins, tracking_request(track, out)
    )
    return _dispatch(record, out, verbose, resume_from=None)


def _resume(out, verbose):
    record, state = resume_point(out)
    return _dispatch(record, out, verbose, resume_from=state)


def _dispatch(record, out, verbose, resume_from):
    """Train here, in ``processes`` workers of a local launcher (decided once, in the record; not in
    a process that is one of them already), or in a child process under the run's backend."""
    training = record["training"]
    backend, processes = training["backend"], training.get("processes", 1)  # none in runs before --processes
    launcher = processes > 1 and distributed.world(backend).size == 1
    if not launcher and backends.can_use(backend):
        return _execute(record, out, verbose, resume_from)
    kwargs = dict(record=record, out=str(out), verbose=verbose, resume_from=resume_from)
    try:
        if launcher:
            failures = launch.run(_execute_json, kwargs, backend, processes)
            if failures:
                raise processes_failed(out, failures, processes)
        else:
            call_in_backend(backend, _execute_json, kwargs)
    except KeyboardInterrupt as exc:  # the processes are stopped: mark their run if they could not
        _mark_stopped(out, exc)
        raise
    return load_run(out)


def _mark_stopped(out, exc):
    """After a stop (``exc``) that ended the processes training ``out`` (a child, the workers): a run
    they could not mark (killed first) is marked interrupted here, and its MLflow run KILLED."""
    record = readable_record(out)
    if record.get("status") == "running" and live_writer(out) is None:
        mark_interrupted(out, record)
        stop_tracking(record, exc)


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
    created = missing_ancestor(out)
    out.mkdir(parents=True, exist_ok=True)
    with Interrupts() as interrupts:
        try:
            with RunLock(out):
                remove_partials(out)  # a killed writer's temporary files
                model = _train_locked(record, out, verbose, resume_from, interrupts)
        except BaseException as exc:
            # An error after a stop was asked for is that stop: in several processes, the collective
            # of a batch that a peer stopped before fails once the peer is gone.
            ended = exc
            if interrupts.requested and not isinstance(exc, KeyboardInterrupt):
                ended = Interrupted(interrupts.signum)
            if resume_from is None and not (out / RUN_FILE).exists():
                if created is not None:
                    shutil.rmtree(created, ignore_errors=True)
            elif record.get("status") == "running":  # run.json is this call's
                if isinstance(ended, KeyboardInterrupt):
                    mark_interrupted(out, record)
                else:
                    mark_failed(out, record, exc)
                stop_tracking(record, ended)
            if ended is not exc:
                raise ended from exc
            raise
    run = load_run(out)
    run._model = model
    return run


def _train_locked(record, out, verbose, resume_from, interrupts):
    job = prepare(record, resume_from)
    job.interrupts = interrupts.reclaim()  # the processes' join may have taken SIGTERM (JAX's does)
    with job.distribution:
        if resume_from:
            with dtype_policy(job.opts.precision):  # the model's layers keep it; the process does not
                model = resumed_model(job, out)
            rows = [r for r in load_run(out).history if int(r["epoch"]) <= job.initial_epoch]
            record.pop("error", None)
        else:
            with dtype_policy(job.opts.precision):  # the model's layers keep it; the process does not
                model, rows = new_model(job), []
            monitor_without_validation(job)
            check_job_monitor(model, job)
            replace_stopped_run(out)
        job.engine.prepare_model(model, sync_batchnorm=job.opts.sync_batchnorm)
        record["status"] = "running"
        tracker = Tracker(record, out)  # only where the run folder is written
        tracker.start()
        write_json(out / RUN_FILE, record)
        trainable, total = transfer.parameter_counts(model)
        before, started = (resume_from or {}).get("seconds", 0.0), time.perf_counter()

        def seconds():  # the run's training time: a resumed run's checkpoint keeps the time before
            return before + time.perf_counter() - started

        with BackgroundWriter() as writer:  # the epoch-end files, written off the training thread
            callbacks = fit_callbacks(job, out, rows, resume_from, writer, seconds)
            if not tracker.failed:  # next to history.csv: an epoch in the history is an epoch logged
                callbacks.insert(1, tracker.callback())
            history = transfer.fit_then_fine_tune(
                model, job, lambda: fit(model, job, callbacks, verbose), lambda o, n: recompile(model, job, o, n)
            )
        metrics = {
            "backend": job.backend,
            "epochs": job.initial_epoch + len(history.epoch),
            "seconds": round(seconds(), 3),
            "trainable_params": trainable,
            "total_params": total,
        }
        if "fine_tune_rate" in (record.get("transfer") or {}):  # --fine-tune-after: more trained from epoch N + 1
            metrics["fine_tuned_params"] = transfer.parameter_counts(model)[0]
        check_finite(history, job.opts)
        metrics.update({k: float(v[-1]) for k, v in history.history.items() if v})
        warnings = evaluate(model, job, metrics, out)
        if warnings:  # in run.json, for the report and whoever reads the run later
            record["warnings"] = warnings
        write_results(model, record, metrics, out)
    plots(out)
    tracker.finish(metrics)
    if tracker.failed and tracker.entry:  # say in run.json why the MLflow run is incomplete
        write_json(out / RUN_FILE, record)
    return model
