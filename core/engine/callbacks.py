"""Callbacks the core adds to every run. Keras is imported inside, after the backend is chosen."""

import os
import signal
import threading

from core.errors import Interrupted, UsageError, choices_text, did_you_mean
from core.files import atomic_path, write_csv, write_json
from core.proc import launch

CHECKPOINT_FILE = "checkpoint.keras"
CHECKPOINT_STATE = "checkpoint.json"
BEST_FILE = "best.keras"


def _run(writer, key, job):
    """Hand ``job`` (a function of the test hook's delay) to ``writer`` under ``key`` (the file it
    writes: a newer job of the same key replaces it if it has not started), or run it now."""
    if writer is None:
        job(0.0)
    else:
        writer.submit(key, job)


def history_writer(path, rows=(), writer=None):
    """A callback that rewrites ``history.csv`` atomically after every epoch.

    Keras's CSVLogger appends in place, so a crash mid-write can leave a torn last line; here a
    reader always sees the whole history up to the last finished epoch. ``rows`` are the epochs of
    an interrupted run being resumed. With ``writer`` (a snapshots.BackgroundWriter) the file is
    written in its background thread.
    """
    import keras

    class HistoryWriter(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.rows = list(rows)

        def on_epoch_end(self, epoch, logs=None):
            row = {"epoch": epoch + 1}
            row.update({k: float(v) for k, v in sorted((logs or {}).items())})
            self.rows.append(row)
            rows = list(self.rows)
            _run(writer, path.name, lambda delay: write_csv(path, rows))

    return HistoryWriter()


def higher_is_better(monitor):
    return any(word in monitor for word in ("acc", "auc", "precision", "recall"))


def logged_metrics(model, batch, validation):
    """The names ``model.fit`` will log for ``model``, found before training: ``loss`` and the
    compiled metrics (``val_`` ones too when there is a ``validation`` split).

    ``batch`` (``(x, y)`` or ``(x,)`` arrays, one batch) builds the compiled metrics symbolically,
    as ``fit`` does first on the JAX and torch backends: nothing runs. A model that writes its own
    ``train_step`` (gan) logs what it returns; by Keras's convention that is ``{m.name: m.result()
    for m in self.metrics}``, which is what is read here."""
    model._symbolic_build(data_batch=batch)
    names = []
    for metric in model.metrics:
        if type(metric).__name__ in ("CompileMetrics", "MetricsList"):  # the metrics compiled with
            names += [m.name for m in metric.metrics]
        else:
            names.append(metric.name)
    return sorted(set(names) | ({f"val_{n}" for n in names} if validation else set()))


def check_monitor(monitor, names, where, custom_step_logs=None):
    """Refuse a ``--monitor`` that is not among ``names`` (what ``fit`` logs), with a did-you-mean.

    ``custom_step_logs`` (a function returning the names one evaluation step logs) is asked only
    when the name is missing and the model has its own train step, whose logs ``names`` guessed."""
    if monitor in names:
        return
    if custom_step_logs is not None:
        logged = custom_step_logs()
        if monitor in logged or monitor in {f"val_{n}" for n in logged}:
            return
    raise UsageError(f"--monitor {monitor!r}{did_you_mean(monitor, names)}; valid: {choices_text(names)} ({where})")


def checkpointer(run_dir, every, monitor, best=None, writer=None, seconds=None):
    """Every ``every`` epochs: ``checkpoint.keras`` (model + optimizer state, so the schedule
    resumes where it was) and ``checkpoint.json`` (the epoch, and the training time so far from
    ``seconds()``: a resumed run reports the whole run's); ``best.keras`` whenever ``monitor``
    improves. Each file is written to a temporary name and renamed, checkpoint.json last.

    With ``writer`` (a snapshots.BackgroundWriter) the training thread only copies the state to
    host memory (snapshots.Snapshotter); the files are written in the writer's thread: the latest
    state of each, within the writer's share of the time (snapshots.BackgroundWriter)."""
    import math
    import shutil

    import keras

    from core.engine.snapshots import Snapshotter, write_snapshot

    sign = -1.0 if higher_is_better(monitor) else 1.0

    class Checkpointer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.best = best
            self.snapshots = None
            self.written = None  # the snapshot checkpoint.keras holds (set in the writer's thread)

        def on_epoch_end(self, epoch, logs=None):
            value = (logs or {}).get(monitor)
            improved = (
                value is not None and math.isfinite(value) and (self.best is None or sign * value < sign * self.best)
            )
            due = bool(every and (epoch + 1) % every == 0)
            if not (due or improved):
                return
            if self.snapshots is None:
                self.snapshots = Snapshotter(self.model)
            snapshot = self.snapshots.take()
            if improved:
                self.best = float(value)
            if due:
                state = {"epoch": epoch + 1, "monitor": monitor, "best": self.best}
                if seconds is not None:
                    state["seconds"] = round(seconds(), 3)
                _run(writer, CHECKPOINT_FILE, lambda delay: self._write_checkpoint(snapshot, state, delay))
            if improved:
                _run(writer, BEST_FILE, lambda delay: self._write_best(snapshot, delay))

        def _write_checkpoint(self, snapshot, state, delay):
            """checkpoint.keras from ``snapshot``, then checkpoint.json (``state``) naming it."""
            write_snapshot(snapshot, run_dir / CHECKPOINT_FILE, delay)
            self.written = snapshot
            write_json(run_dir / CHECKPOINT_STATE, state)

        def _write_best(self, snapshot, delay):
            if snapshot is self.written:  # the state checkpoint.keras holds: copy it, don't build it twice
                with atomic_path(run_dir / BEST_FILE) as tmp:
                    shutil.copyfile(run_dir / CHECKPOINT_FILE, tmp)
            else:
                write_snapshot(snapshot, run_dir / BEST_FILE, delay)

    return Checkpointer()


class Interrupts:
    """Ctrl-C (SIGINT, and SIGTERM) during a training, made reliable: the request is recorded and
    ``Interrupted`` (a ``KeyboardInterrupt``) raised at a safe point, between batches
    (:func:`interrupt_checker`), or at once outside ``fit`` and on a second Ctrl-C.

    Python ignores an exception raised inside a garbage-collector callback, so a plain
    KeyboardInterrupt that lands in one (TensorFlow's ``_xla_gc_callback``) was lost and the training
    ran on; the recorded request is not. Installed only in the main thread over Python's default
    handler (an ignored SIGINT stays ignored), and the previous handler is restored on exit.

    In a worker of ``--processes N`` the first signal is passed to the launcher, which relays it to
    every worker (``launch``); the later ones (the relayed one, a second Ctrl-C) are left to the
    launcher, which stops the workers at once itself: the stop of this one is not cut short."""

    def __init__(self):
        self.signum = None  # the signal that asked for the stop
        self.in_fit = False
        self._previous = {}

    @property
    def requested(self):
        return self.signum is not None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            # SIGTERM (a scheduler stopping the job) is taken as Ctrl-C, where nothing else handles it:
            # the pending checkpoint is flushed and the run marked interrupted, resumable.
            for signum, default in ((signal.SIGINT, signal.default_int_handler), (signal.SIGTERM, signal.SIG_DFL)):
                if signal.getsignal(signum) is default:
                    self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc):
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}

    def reclaim(self):
        """Install the handlers again (a library may have taken a signal meanwhile: JAX's distributed
        client takes SIGTERM for its preemption notice, and a SIGTERM then stopped nothing); self."""
        for signum in self._previous:
            signal.signal(signum, self._handle)
        return self

    def _handle(self, signum, frame):
        first = self.signum is None
        if first:
            self.signum = signum
        if launch.launched():  # a worker of --processes N: the launcher stops every worker
            if first:
                launch.tell_launcher(signum)
                if not self.in_fit:
                    raise Interrupted(signum)
            return
        if first and self.in_fit:
            os.write(2, launch.STOPPING)
            return
        raise Interrupted(self.signum)

    def check(self):
        """Raise ``Interrupted`` if a stop was asked for (a safe point)."""
        if self.signum is not None:
            raise Interrupted(self.signum)


def interrupt_checker(interrupts):
    """A callback that stops ``fit`` before the next batch after a Ctrl-C (``interrupts``).

    It checks at batch *begin*: a callback with a batch-end hook that is not ``async_safe`` makes
    Keras call every batch-end hook synchronously, a host sync per step on JAX and torch."""
    import keras

    class StopOnInterrupt(keras.callbacks.Callback):
        def check(self, *args, **kwargs):
            interrupts.check()

        on_train_begin = on_train_batch_begin = on_test_batch_begin = on_epoch_end = check

    return StopOnInterrupt()


def nan_stopper():
    """Keras's TerminateOnNaN, marked ``async_safe``: its batch-end check (a float of the loss) runs
    in Keras's callback thread on JAX and torch, instead of making every step wait for the loss.
    It stops the training a batch or two after a NaN instead of at once; the epoch-end check
    (fitting.check_finite) says so either way."""
    import keras

    class TerminateOnNaN(keras.callbacks.TerminateOnNaN):
        async_safe = True

    return TerminateOnNaN()
