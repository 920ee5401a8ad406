"""Checkpoints off the training thread.

At an epoch end the training thread only copies the model's state (weights and optimizer variables)
to host memory, as numpy arrays; a background thread builds the ``.keras`` file from that copy
(the same zip ``model.save`` writes: metadata.json, config.json, model.weights.h5) and renames it
into place (core.files). ``BackgroundWriter`` keeps at most one write per file pending (the latest
state), spends at most a small share of the time writing, and flushes before the training ends, on
an error and on Ctrl-C / SIGTERM.

How the state is found: the first snapshot walks the model as ``model.save`` does (Keras's
``saving_lib._save_state``) with a store that records, for each weights group, which variable
went under which key. Later snapshots read the same variables again, without the walk. A layer
that saves a computed value rather than a variable (a LoRA Dense saves its merged kernel) is
walked every time; a model with assets (a lookup layer's vocabulary) is serialized whole, in
memory, on the training thread, and only the disk write is left to the background.
"""

import io
import json
import os
import threading
import time
import zipfile

import numpy as np

from core.files import atomic_path

# Test hook (an honest slow disk): seconds each background write waits, its temporary file
# written, before the rename. tests/core/engine/test_snapshots.py kills a run in that window.
DELAY_ENV = "KERASTACK_TEST_WRITE_DELAY"


class _HasAssets(Exception):
    """The model saves assets (files): snapshot it with model.save instead."""


def _recording_stores():
    """A weights store that records (path, metadata, [(key, value)]) and an assets store that
    refuses, both of the classes Keras's ``_save_state`` accepts."""
    from keras.src.saving import saving_lib

    class WeightsRecorder(saving_lib.H5IOStore):
        def __init__(self):  # no h5 file: nothing is written
            self.groups = []

        def __bool__(self):
            return True

        def make(self, path, metadata=None):
            self.groups.append((path, metadata, []))
            return self

        def __setitem__(self, key, value):
            self.groups[-1][2].append((key, value))

        def close(self):
            pass

    class AssetsRefuser(saving_lib.DiskIOStore):
        def __init__(self):
            pass

        def make(self, path):
            raise _HasAssets(path)

        def close(self):
            pass

    return WeightsRecorder(), AssetsRefuser()


def host_copy(value):
    """A numpy copy of a variable or tensor, owned by the caller (never a view of a buffer the
    training may donate or update in place)."""
    import keras

    # variable.numpy() measured cheapest on every backend (bench/snapshot_cost.py)
    array = value.numpy() if isinstance(value, keras.Variable) else keras.ops.convert_to_numpy(value)
    return np.array(array, copy=True)


def _match(items, optimizers):
    """``items`` (key, array) with each array replaced by the optimizer variable it copies, or None."""
    for optimizer in optimizers:
        variables = list(optimizer.variables)
        if len(variables) != len(items):
            continue
        arrays = [np.asarray(a) for _, a in items]
        if all(
            a.shape == tuple(v.shape) and np.array_equal(a, host_copy(v), equal_nan=a.dtype.kind == "f")
            for a, v in zip(arrays, variables)
        ):
            return [(k, v) for (k, _), v in zip(items, variables)]
    return None


class Snapshot:
    """The model's state at one moment, in host memory: ``groups`` as the weights file holds them,
    or ``data`` (a whole .keras file's bytes) for a model with assets."""

    def __init__(self, config_json, groups=None, data=None):
        self.config_json, self.groups, self.data = config_json, groups, data

    def write(self, path):
        """Write the .keras file at ``path`` (a temporary file: the caller renames it)."""
        with open(path, "wb") as f:
            if self.data is not None:
                f.write(self.data)
            else:
                self._write_zip(f)

    def _write_zip(self, f):
        import datetime

        import keras
        from keras.src.saving import saving_lib

        metadata = {
            "keras_version": keras.__version__,
            "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
        }
        with zipfile.ZipFile(f, "w") as zf:
            zf.writestr(saving_lib._METADATA_FILENAME, json.dumps(metadata))
            zf.writestr(saving_lib._CONFIG_FILENAME, self.config_json)
            store = saving_lib.H5IOStore(saving_lib._VARS_FNAME_H5, archive=zf, mode="w")
            try:
                for path, meta, items in self.groups:
                    store.make(path, metadata=meta)
                    for key, array in items:
                        store[key] = array
            finally:
                store.close()


class Snapshotter:
    """Takes :class:`Snapshot` s of one model; remembers which variables to read after the first."""

    def __init__(self, model):
        self.model = model
        self.plan = None  # [(path, metadata, [(key, variable)])] once every saved value is a variable
        self.config_json = None
        self.with_assets = False
        self.structure = None

    def take(self):
        from keras.src.saving import saving_lib

        structure = self._structure()
        if structure != self.structure:  # recompiled or (un)frozen (--fine-tune-after): walk anew
            self.plan, self.config_json, self.structure = None, None, structure
        if self.with_assets:
            return self._whole()
        config_json = self._config_json()
        if self.plan is not None:
            groups = [(p, m, [(k, host_copy(v)) for k, v in items]) for p, m, items in self.plan]
            return Snapshot(config_json, groups)
        weights, assets = _recording_stores()
        try:
            saving_lib._save_state(self.model, weights, assets, inner_path="", visited_saveables=set())
        except _HasAssets:
            self.with_assets = True
            return self._whole()
        groups = [(p, m, [(k, host_copy(v)) for k, v in items]) for p, m, items in weights.groups]
        self.plan = self._plan(weights.groups)
        return Snapshot(config_json, groups)

    def _plan(self, recorded):
        """``recorded`` with every value a variable, or None. Layers store their variables; an
        optimizer stores copies (``variable.numpy()``), matched back here to its ``variables`` in
        order, by shape, dtype and value."""
        import keras

        optimizers = [getattr(self.model, "optimizer", None)]
        optimizers.append(getattr(optimizers[0], "inner_optimizer", None))  # a LossScaleOptimizer's
        plan = []
        for path, meta, items in recorded:
            if not all(isinstance(v, keras.Variable) for _, v in items):
                items = _match(items, [o for o in optimizers if o is not None])
                if items is None:
                    return None  # a computed value (a LoRA Dense's merged kernel): walk every time
            plan.append((path, meta, items))
        return plan

    def _structure(self):
        """What the plan and the config depend on besides values: the optimizer (a recompile makes
        a new one, with new variables) and which layers train (the config records it)."""
        optimizer = getattr(self.model, "optimizer", None)
        layers = self.model._flatten_layers(include_self=True, recursive=True)
        return id(optimizer), len(getattr(optimizer, "variables", ())), tuple(layer.trainable for layer in layers)

    def _config_json(self):
        """The model's config as model.save writes it; computed again only if the optimizer's
        learning rate (which the config records) changed, since the rest is fixed during fit."""
        from keras.src.saving import saving_lib

        key = self._config_key()
        if self.config_json is None or key != self._key:
            self.config_json, _ = saving_lib._serialize_model_as_json(self.model)
            self._key = key
        return self.config_json

    def _config_key(self):
        optimizer = getattr(self.model, "optimizer", None)
        lr = getattr(optimizer, "_learning_rate", None)
        if lr is None or not hasattr(lr, "numpy"):
            return None  # a schedule (fixed config) or no optimizer
        return float(np.asarray(host_copy(lr)))

    def _whole(self):
        from keras.src.saving import saving_lib

        buffer = io.BytesIO()
        saving_lib.save_model(self.model, buffer)  # what model.save writes, into memory
        return Snapshot(None, data=buffer.getvalue())


class BackgroundWriter:
    """Runs write jobs in a background thread, coalesced, within a share of the wall time.

    A job is a function of one argument (the test hook's delay, seconds), filed under a key (the file
    it writes). ``submit(key, job)`` never waits: a job not yet started is replaced by a newer one of
    the same key (the latest state wins), so at most one write per file is pending and the training
    thread is never held back by its files.

    The writer takes every pending job at once and runs them in the order they were (last) filed.
    After a round that cost ``c`` seconds of the writer thread's CPU, the next round starts no sooner
    than ``c / share`` after it began: the writes take at most ``share`` of the time, where each one
    was a cost per epoch (a .keras file of a small model costs 5-30 ms; its epochs, 50-200 ms).
    Epochs longer than ``1 / share`` writes, nearly every real training, have every file written
    at each epoch end as before; shorter ones have the latest state written every few epochs.
    Waiting on a disk (a sleep, I/O) costs no CPU and does not count.

    ``flush()`` (also on leaving the context: the end, an error, Ctrl-C, SIGTERM) writes whatever
    is pending at once and waits for it. After a failed job the rest of its round is skipped
    (checkpoint.json never names a checkpoint that was not written) and the error is raised by the
    next ``submit`` or ``flush``, in the training thread."""

    def __init__(self, share=0.02):
        self.share = share
        self._pending = {}  # key -> job, in filing order
        self._cond = threading.Condition()
        self._busy = False
        self._flushing = 0
        self._closed = False
        self._next_start = 0.0  # time.monotonic() before which the next round may not start
        self._thread = None
        self._error = None
        self.replaced = 0  # jobs replaced by a newer one of their file before they ran

    def submit(self, key, job):
        self._raise()
        with self._cond:
            if self._pending.pop(key, None) is not None:
                self.replaced += 1
            self._pending[key] = job
            if self._thread is None:
                # A daemon, so that an interpreter torn down by a second Ctrl-C does not wait for it;
                # leaving the context (every normal or exceptional exit) flushes first.
                self._thread = threading.Thread(target=self._work, name="kerastack-writer", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def flush(self):
        """Write every pending job now and wait until they have run; raise the first error one had."""
        with self._cond:
            self._flushing += 1
            self._cond.notify_all()
            try:
                while self._thread is not None and (self._pending or self._busy):
                    self._cond.wait()
            finally:
                self._flushing -= 1
        self._raise()

    def close(self):
        try:
            self.flush()
        finally:
            with self._cond:
                self._closed = True
                self._cond.notify_all()
            if self._thread is not None:
                self._thread.join()
                self._thread = None

    def _raise(self):
        error, self._error = self._error, None
        if error is not None:
            raise error

    def _next_round(self):
        """The jobs of the next round, once it is due (or flushed); None when closed."""
        with self._cond:
            while True:
                if self._pending:
                    wait = self._next_start - time.monotonic()
                    if self._flushing or self._closed or wait <= 0:
                        jobs, self._pending = list(self._pending.values()), {}
                        self._busy = True
                        return jobs
                    self._cond.wait(wait)
                elif self._closed:
                    return None
                else:
                    self._cond.wait()

    def _work(self):
        delay = float(os.environ.get(DELAY_ENV) or 0)
        while (jobs := self._next_round()) is not None:
            began, cpu = time.monotonic(), time.thread_time()
            try:
                for job in jobs:
                    if self._error is None:
                        job(delay)
            except BaseException as exc:  # noqa: BLE001 - handed to the training thread
                self._error = exc
            finally:
                cost = time.thread_time() - cpu
                with self._cond:
                    self._next_start = began + cost / self.share
                    self._busy = False
                    self._cond.notify_all()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            self.close()
        except BaseException:
            if exc is None:
                raise  # a failed write is the error to report; otherwise the first error stays


def write_snapshot(snapshot, path, delay=0.0):
    """Write ``snapshot`` to ``path`` whole or not at all; ``delay`` (the test hook) waits between
    the temporary file and the rename."""
    with atomic_path(path) as tmp:
        snapshot.write(tmp)
        if delay:
            time.sleep(delay)
