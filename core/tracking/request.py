"""What a run asks of tracking: ``--track`` or a ``[track]`` table checked, before anything runs,
into run.json's ``tracking`` entry (the tracker, its store, the experiment); no mlflow import."""

import importlib.util
import os
from pathlib import Path

from core.errors import UsageError, choices_text, did_you_mean

TRACKERS = ("mlflow",)
TRACK_KEYS = ("to", "experiment", "uri")
STORE_FILE = "mlflow.db"
EXPERIMENT = "kerastack"
INSTALL = "pip install 'kerastack[track]'"


def tracking_request(track, out):
    """run.json's ``tracking`` entry for ``track`` (None, ``"mlflow"``, or a ``[track]`` table:
    ``to``, ``experiment``, ``uri``), or None; a usage error for an unknown tracker or key, or when
    mlflow (or, for a SQLite store, SQLAlchemy) is not installed. ``out`` is the run folder."""
    if track is None or track == "" or track == "none":
        return None
    table = {"to": track} if isinstance(track, str) else dict(track)
    for key in table:
        if key not in TRACK_KEYS:
            raise UsageError(f"[track] {key!r}{did_you_mean(key, TRACK_KEYS)}; valid: {choices_text(TRACK_KEYS)}")
    to = table.get("to")
    if to in ("none", ""):
        return None
    if to is None:
        raise UsageError(f"[track] needs 'to' (the tracker); valid: {choices_text(TRACKERS)}")
    if to not in TRACKERS:
        raise UsageError(f"--track {to!r}{did_you_mean(str(to), TRACKERS)}; valid: {choices_text(TRACKERS)}")
    uri = table.get("uri") or os.environ.get("MLFLOW_TRACKING_URI") or default_uri(out)
    _check_installed(uri)
    experiment = table.get("experiment") or os.environ.get("MLFLOW_EXPERIMENT_NAME") or EXPERIMENT
    return {"to": to, "uri": uri, "experiment": experiment, "run_id": None}


def default_uri(out):
    """``sqlite:////abs/runs/mlflow.db``: the store next to the run folder ``out`` (absolute, so that
    an export from another directory finds the same store)."""
    return f"sqlite:///{Path(out).resolve().parent / STORE_FILE}"


def _installed(name):
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # hidden, or a None placeholder in sys.modules
        return False


def _check_installed(uri):
    if not _installed("mlflow"):
        raise UsageError(f"--track mlflow needs the mlflow client: {INSTALL}")
    if uri.startswith("sqlite:") and not (_installed("sqlalchemy") and _installed("alembic")):
        raise UsageError(f"--track mlflow with a SQLite store ({uri}) needs SQLAlchemy and alembic: {INSTALL}")
