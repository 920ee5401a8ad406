"""A run folder's life: checked out, started again, resumed, marked interrupted, failed or complete."""

import os
import shlex
import shutil
import sys
from pathlib import Path

from core.engine import distributed
from core.engine.callbacks import BEST_FILE, CHECKPOINT_FILE, CHECKPOINT_STATE
from core.errors import KerastackError, UsageError
from core.files import atomic_path, read_json, write_json
from core.runs import HISTORY_FILE, METRICS_FILE, MODEL_FILE, RUN_FILE, live_writer, load_run
from core.runs.plots import PREDICTIONS_FILE

# The files of a run that stopped before its first checkpoint, replaced when it is started again.
_RESTART_FILES = (RUN_FILE, HISTORY_FILE, BEST_FILE, METRICS_FILE, PREDICTIONS_FILE, "tensorboard")


def check_out(out):
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


def replace_stopped_run(out):
    """Remove the files of a run that stopped before its first checkpoint, where a new run starts
    (checked again here, under the lock)."""
    check_out(out)
    for name in _RESTART_FILES:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def _restart_command(out):
    return f"kerastack train --config {shlex.quote(str(out))} --out {shlex.quote(str(out))}"


def readable_record(out):
    try:
        return read_json(out / RUN_FILE, "run record")
    except KerastackError:
        return {}


def missing_ancestor(path):
    """The outermost folder of ``path`` (itself included) that does not exist yet, or None."""
    path = Path(path).absolute()
    if path.exists():
        return None
    while not path.parent.exists():
        path = path.parent
    return path


def mark_interrupted(out, record):
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
    if distributed.world().writer:  # the other ranks' folders are private, and gone after
        print(f"kerastack: {out} {hint}", file=sys.stderr)


def processes_failed(out, failures, processes):
    """The error of a run whose workers failed (``[(rank, cause)]``, the first first): how many, the
    first's cause, and whether the run folder keeps a checkpoint to resume from."""
    rank, cause = failures[0]
    kept = (
        f"the run folder {out} keeps its last checkpoint: kerastack train --resume {shlex.quote(str(out))}"
        if (out / CHECKPOINT_STATE).exists()
        else "no checkpoint was written"
    )
    return KerastackError(f"{len(failures)} of {processes} processes failed (first: rank {rank}, {cause}); {kept}")


def mark_failed(out, record, exc):
    """Record in run.json that the run stopped on an error (the files it wrote stay whole)."""
    record["status"] = "failed"
    record["error"] = " ".join(f"{type(exc).__name__}: {exc}".split())[:500]
    try:
        write_json(out / RUN_FILE, record)
    except OSError:
        pass  # the original error is what the user needs to see


def write_results(model, record, metrics, out):
    """model.keras, metrics.json, the record marked complete; the checkpoints go (model.keras is the
    last state now)."""
    with atomic_path(out / MODEL_FILE) as tmp:
        model.save(tmp)
    write_json(out / METRICS_FILE, metrics)
    record["status"] = "complete"
    write_json(out / RUN_FILE, record)
    for name in (CHECKPOINT_FILE, CHECKPOINT_STATE):
        (out / name).unlink(missing_ok=True)


def resume_point(out):
    """The record of the run in ``out`` and its last checkpoint's state, to resume it; an error for
    a complete run, or one that stopped before its first checkpoint (it starts again instead)."""
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
    return record, state
