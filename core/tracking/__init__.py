"""MLflow tracking, a wing of its own: ``kerastack train --track mlflow`` (or a config file's
``[track]`` table), and ``kerastack run --track mlflow`` (the main job: its training, both exports and
both verifies).

A tracked run logs to one MLflow run: its parameters (run.json flattened: architecture, dataset, every
training option, the package versions), its metrics at every epoch end (step = epoch), then its files
(model.keras, run.json, history.csv, metrics.json, the plots) and, on ``kerastack export``, the exported
files and their report under ``export/<exporter>``; each .tflite verify result that is recorded in
verify.json (``kerastack verify``, the export report, ``kerastack run``) adds its numbers as metrics
``verify/<file>/<key>``. run.json's ``tracking`` holds the MLflow run id and the tracking URI, so
``--resume`` continues the same MLflow run and ``export`` and ``verify`` find it.

The default store is a SQLite database next to the run folders, ``<runs root>/mlflow.db`` (the folder
that holds the run folder: ``runs/`` by default), its artifacts in ``<runs root>/mlartifacts/``: offline,
no server. ``MLFLOW_TRACKING_URI`` (or ``[track] uri``) points it elsewhere, e.g. at ``mlflow server``.

Three audiences use it through the names below: the config files (``TRACK_KEYS``), training
(``tracking_request``, ``Tracker``, ``stop``) and export and verify (``log_files``, ``log_verified``).
It imports the kernel and ``core.runs`` (a run record flattened), never the engine or deploy.
"""

from core.tracking.mlflow_run import Tracker, log_files, log_verified, stop
from core.tracking.request import TRACK_KEYS, tracking_request

__all__ = ["TRACK_KEYS", "Tracker", "log_files", "log_verified", "stop", "tracking_request"]
