"""One training's MLflow run: the ``Tracker`` that creates (or continues) it, logs its parameters,
its metrics at every epoch end and its files, and ``stop`` when the training fails; then
``log_files`` and ``log_verified``, through which export and verify add to it.

Logging is by hand through ``MlflowClient`` (``mlflow.keras.autolog`` covers TensorFlow only), so it is
the same under every backend. mlflow is imported only here, inside functions. Tracking never fails a
training: the first error disables it for the rest of the process and says so in one line.
"""

import logging
import math
import os
import re
import sys
import time
from pathlib import Path

from core.errors import one_line
from core.runs.catalog import MLFLOW_ARTIFACTS as ARTIFACTS_DIR
from core.runs.catalog import flatten

# The run's files logged after training (those that exist), and the record keys that are not parameters.
RUN_FILES = ("model.keras", "run.json", "history.csv", "metrics.json", "curves.png", "confusion.png")
FINAL_METRICS = ("seconds", "epochs", "trainable_params", "total_params", "fine_tuned_params")  # besides the test_ ones
NOT_PARAMS = ("status", "created", "tracking", "exports", "resumed", "error")
_ACTIVE = {}  # run id → the Tracker logging it in this process (stop() waits for its metrics)
# Run ids whose tracking failed in this process or its parent (an export's TensorFlow child inherits
# the environment): not tried again, not said again.
FAILED_ENV = "KERASTACK_TRACKING_FAILED"
_PARAM_LIMIT = 6000  # characters MLflow keeps of a parameter value
_BATCH = 100  # parameters per request (MLflow's limit)


def _client(uri):
    """An MlflowClient for ``uri``, with MLflow's start-up chatter (database migrations) kept quiet."""
    from mlflow import MlflowClient  # importing mlflow sets its loggers' levels: quieten them after

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # A failed asynchronous batch is raised by the tracker's wait(), which says so in its one line.
    logging.getLogger("mlflow.utils.async_logging").setLevel(logging.CRITICAL)
    return MlflowClient(tracking_uri=uri)


class Tracker:
    """One training's MLflow run (``record["tracking"]``, which it fills in with the run id).

    Every call is guarded: the first failure prints one line, is recorded in ``tracking.error``, and
    turns the tracker off; training goes on."""

    def __init__(self, record, out):
        self.record = record
        self.entry = record.get("tracking")
        self.out = Path(out)
        self.client = None
        self.pending = None  # the last epoch's metrics, logged in the background
        self.failed = not self.entry
        if self.entry:
            self.entry.pop("error", None)  # a resumed run tries again

    @property
    def run_id(self):
        return self.entry.get("run_id") if self.entry else None

    def start(self):
        """Create the MLflow run (its parameters logged), or continue the resumed run's."""
        self._guard(self._start)

    def _start(self):
        entry = self.entry
        self.client = _client(entry["uri"])
        if entry.get("run_id"):
            self.client.update_run(entry["run_id"], status="RUNNING")
        else:
            run = self.client.create_run(_experiment_id(self.client, entry), run_name=self.out.name, tags=self._tags())
            entry["run_id"] = run.info.run_id
            self._log_params()
        _ACTIVE[entry["run_id"]] = self

    def _tags(self):
        record = self.record
        return {
            "kerastack.run_dir": str(self.out.resolve()),
            "kerastack.architecture": record["architecture"]["name"],
            "kerastack.dataset": record["dataset"]["name"],
            "kerastack.backend": record["training"]["backend"],
        }

    def _log_params(self):
        from mlflow.entities import Param

        params = params_of(self.record)
        items = [Param(k, v) for k, v in sorted(params.items())]
        for i in range(0, len(items), _BATCH):
            self.client.log_batch(self.run_id, params=items[i : i + _BATCH])

    def log_metrics(self, values, step):
        """Finite numbers of ``values`` as metrics at ``step`` (the epoch), sent in the background
        (MLflow's asynchronous logging): the training thread waits only for the previous epoch's."""
        self._guard(self._log_metrics, values, step, False)

    def _log_metrics(self, values, step, synchronous=True):
        self._wait()
        metrics = _metrics(values, step)
        if metrics:
            operation = self.client.log_batch(self.run_id, metrics=metrics, synchronous=synchronous)
            self.pending = None if synchronous else operation

    def _wait(self):
        """Wait for the metrics in flight; their failure is raised here."""
        pending, self.pending = self.pending, None
        if pending is not None:
            pending.wait()

    def callback(self):
        """A Keras callback that logs each epoch's metrics (step = the epoch number, from 1)."""
        import keras

        tracker = self

        class TrackEpochs(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                tracker.log_metrics({k: float(v) for k, v in (logs or {}).items()}, epoch + 1)

        return TrackEpochs()

    def finish(self, metrics):
        """The final metrics (test ones, time, parameter counts) at the last epoch, the run's files,
        and the MLflow run marked finished."""
        self._guard(self._finish, metrics)

    def _finish(self, metrics):
        final = {k: v for k, v in metrics.items() if k.startswith("test_") or k in FINAL_METRICS}
        self._log_metrics(final, int(metrics.get("epochs") or 0))
        for name in RUN_FILES:
            if (self.out / name).is_file():
                self.client.log_artifact(self.run_id, str(self.out / name))
        self.client.set_terminated(self.run_id, "FINISHED")
        _ACTIVE.pop(self.run_id, None)

    def _guard(self, function, *args):
        if self.failed or _failed(self.run_id):
            return
        try:
            function(*args)
        except Exception as exc:  # noqa: BLE001 - tracking must never fail a training
            self.failed = True
            if self.run_id:
                os.environ[FAILED_ENV] = " ".join(sorted({*os.environ.get(FAILED_ENV, "").split(), self.run_id}))
            self.entry["error"] = one_line(exc, first=True)[:500]  # the whole reason, in run.json
            print(
                f"kerastack: warning: MLflow tracking failed ({self.entry['uri']}: {_short(self.entry['error'])}); "
                "the run goes on untracked (its folder has everything)",
                file=sys.stderr,
            )


def _failed(run_id):
    """Whether ``run_id``'s tracking already failed in this process (or the one that started it)."""
    return bool(run_id) and run_id in os.environ.get(FAILED_ENV, "").split()


def _metrics(values, step):
    """The finite numbers of ``values`` as MLflow metrics at ``step``, timestamped now."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    return [
        Metric(_key(k), float(v), now, step)
        for k, v in sorted(values.items())
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    ]


def _short(error):
    """The gist of an MLflow error for a one-line warning: the system error where there is one
    (``[Errno 111] Connection refused`` rather than a paragraph of urllib3), else its start."""
    found = re.search(r"\[Errno -?\d+\] [^'\")]+", error)
    if found:
        return found.group(0).strip()
    return error if len(error) <= 160 else error[:157] + "..."


def _experiment_id(client, entry):
    """The id of ``entry``'s experiment, created if new (in the default SQLite store, with its
    artifacts in ``mlartifacts/`` beside the database rather than in the working directory)."""
    found = client.get_experiment_by_name(entry["experiment"])
    if found is not None:
        return found.experiment_id
    location = None
    if entry["uri"].startswith("sqlite:///"):
        location = (Path(entry["uri"].removeprefix("sqlite:///")).parent / ARTIFACTS_DIR).as_uri()
    try:
        return client.create_experiment(entry["experiment"], artifact_location=location)
    except Exception:  # another run created it meanwhile
        found = client.get_experiment_by_name(entry["experiment"])
        if found is None:
            raise
        return found.experiment_id


def params_of(record):
    """run.json as MLflow parameters: ``{"training.epochs": "10", "versions.keras": "3.15.1", ...}``."""
    flat = flatten({k: v for k, v in record.items() if k not in NOT_PARAMS})
    try:
        import mlflow

        flat["versions.mlflow"] = mlflow.__version__
    except ImportError:
        pass
    return {_key(k): str(v)[:_PARAM_LIMIT] for k, v in flat.items()}


def _key(name):
    """A name MLflow accepts (letters, digits, ``_ - . / :`` and spaces)."""
    return re.sub(r"[^\w\-. /:]", "_", str(name))


def stop(record, exc):
    """Mark a tracked run's MLflow run ``KILLED`` (Ctrl-C) or ``FAILED`` after the training stopped
    on ``exc``; a failure here is ignored (the training's own error is what the user needs)."""
    entry = record.get("tracking") or {}
    if not entry.get("run_id") or entry.get("error"):
        return
    try:
        status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        tracker = _ACTIVE.pop(entry["run_id"], None)
        if tracker is not None:
            tracker._wait()  # the last epoch's metrics, still in flight
        _client(entry["uri"]).set_terminated(entry["run_id"], status)
    except Exception:  # noqa: BLE001
        pass


def log_files(run_dir, record, paths, folder):
    """Log ``paths`` (files an export or its report wrote) as artifacts under ``folder`` of the run's
    MLflow run, if the run is tracked; a failure says so in one line and is otherwise ignored."""
    if not paths:
        return

    def log(client, run_id):
        for path in paths:
            path = Path(path)
            if path.is_dir():
                client.log_artifacts(run_id, str(path), f"{folder}/{path.name}")
            elif path.is_file():
                client.log_artifact(run_id, str(path), folder)

    _log_to_run(run_dir, record, log)


def log_verified(run_dir, record, tflite_path, result, kept=None):
    """``verify()``'s numbers for ``tflite_path`` (a file exported from the run) as metrics of the run's
    MLflow run, if the run is tracked: ``verify/<file name>/<key>`` at step 0, e.g.
    ``verify/model_int8.tflite/latency_ms_p50``; and ``kept`` (the verify.json that records them) as a
    file beside the export's, when it lies in the run folder. A failure says so in one line."""
    name = Path(tflite_path).name
    metrics = {f"verify/{name}/{k}": v for k, v in result.items()}

    def log(client, run_id):
        client.log_batch(run_id, metrics=_metrics(metrics, 0))
        folder = _folder_in_run(run_dir, Path(kept).parent) if kept else None
        if folder is not None:
            client.log_artifact(run_id, str(kept), folder)

    _log_to_run(run_dir, record, log)


def _folder_in_run(run_dir, folder):
    """``folder`` relative to the run folder (``export/tflite``), or None if it lies outside."""
    try:
        return Path(folder).resolve().relative_to(Path(run_dir).resolve()).as_posix()
    except ValueError:
        return None


def _log_to_run(run_dir, record, log):
    """``log(client, run_id)`` against the MLflow run named in ``record["tracking"]``, if the run is
    tracked and its tracking has not failed in this process; a failure says so in one line (once per
    process: a main job whose store went away warns once, not at every export and verify)."""
    entry = (record or {}).get("tracking") or {}
    if not entry.get("run_id") or _failed(entry["run_id"]):
        return
    tracker = Tracker({"tracking": dict(entry)}, run_dir)
    tracker._guard(lambda: log(_client(entry["uri"]), entry["run_id"]))
