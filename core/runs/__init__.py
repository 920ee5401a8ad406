"""Runs: the folders training leaves behind, read back, listed, compared, plotted and reported."""

from core.runs.lock import RunLock, live_writer
from core.runs.run import (
    HISTORY_FILE,
    METRICS_FILE,
    MODEL_FILE,
    RUN_FILE,
    Run,
    import_model_modules,
    inference_model,
    load_model,
    load_run,
    new_run_dir,
)

__all__ = [
    "HISTORY_FILE",
    "METRICS_FILE",
    "MODEL_FILE",
    "RUN_FILE",
    "Run",
    "RunLock",
    "import_model_modules",
    "inference_model",
    "load_model",
    "live_writer",
    "load_run",
    "new_run_dir",
]
