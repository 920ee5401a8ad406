"""Training in several processes: who this process is (``World``, read from the variables its
launcher sets: ``TF_CONFIG``, ``KERAS_DISTRIBUTION_*``, torchrun's ``RANK``/``WORLD_SIZE``), what
``--distribute``/``--processes`` can do, what run.json records of it, and the folder each rank writes.
How each backend joins the others, shards the data and reduces what Keras's ``fit`` does not is
that backend's own (``core/engine/backends/``).

Nothing here imports a framework at module level; nothing here writes a file.
"""

import contextlib
import dataclasses
import json
import os
import shutil
import tempfile
from pathlib import Path

from core.errors import UsageError
from core.proc.launch import LOCAL_ENV, SCRATCH_ENV  # what `--processes N` sets in its workers

# Seconds a rendezvous or a collective may wait for a peer before it fails (a stuck peer; a dead one
# is noticed in seconds). Long enough for a slow peer's first compile.
TIMEOUT_ENV = "KERASTACK_DIST_TIMEOUT"
DEFAULT_TIMEOUT_S = 300
ENGINES = {
    "torch": "torch.distributed (gloo on CPU, nccl on GPU) + Keras fit with all-reduced gradients",
    "jax": "jax.distributed via keras.distribution.initialize + DataParallel (gloo CPU collectives)",
    "tensorflow": "tf.distribute.MultiWorkerMirroredStrategy (TF_CONFIG)",
}


@dataclasses.dataclass(frozen=True)
class World:
    """This process's place among the processes of one training: ``rank`` of ``size``, and the
    variables it was read from (``source``)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    source: str = ""

    @property
    def writer(self):
        return self.rank == 0


def world(backend=None, environ=None):
    """The ``World`` that the launcher's variables describe (one process of one when there are
    none): ``TF_CONFIG`` for TensorFlow, ``KERAS_DISTRIBUTION_*`` (or torchrun's) for JAX,
    torchrun's ``RANK``/``WORLD_SIZE`` for torch; any of them when ``backend`` is None."""
    env = os.environ if environ is None else environ
    local = int(env.get("LOCAL_RANK", 0) or 0)
    if backend in (None, "tensorflow") and env.get("TF_CONFIG"):
        try:
            config = json.loads(env["TF_CONFIG"])
            workers = len(config["cluster"].get("worker", [])) + len(config["cluster"].get("chief", []))
            task = config["task"]
            rank = int(task["index"]) + (1 if task["type"] == "worker" and "chief" in config["cluster"] else 0)
        except (ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"TF_CONFIG is not a TensorFlow cluster spec ({exc}): {env['TF_CONFIG'][:200]}") from None
        return World(rank, workers, local, "TF_CONFIG")
    if backend in (None, "jax") and env.get("KERAS_DISTRIBUTION_NUM_PROCESSES"):
        return World(
            _int(env, "KERAS_DISTRIBUTION_PROCESS_ID"),
            _int(env, "KERAS_DISTRIBUTION_NUM_PROCESSES"),
            local,
            "KERAS_DISTRIBUTION_*",
        )
    if env.get("WORLD_SIZE"):
        return World(_int(env, "RANK"), _int(env, "WORLD_SIZE"), local, "RANK/WORLD_SIZE")
    return World()


def _count(name):
    try:
        return int(os.environ.get(name) or 0)
    except ValueError:
        return 0


def _int(env, name):
    try:
        return int(env[name])
    except (KeyError, ValueError):
        raise UsageError(f"{name} must be set to an integer by the launcher, got {env.get(name)!r}") from None


# How often the launcher restarted this command: torchrun's elastic agent (--max-restarts), SLURM
# (a job requeued: --requeue, or preempted).
RESTART_ENVS = ("TORCHELASTIC_RESTART_COUNT", "SLURM_RESTART_COUNT")


def elastic_restart(out):
    """Whether this process is a restart by its launcher (torchrun's ``--max-restarts``, SLURM's
    requeue) of a run whose folder ``out`` holds a checkpoint that is not the end of it: the command
    is the first one again, and it continues that run (as ``--resume``) instead of refusing the folder."""
    if not out or not any(_count(name) > 0 for name in RESTART_ENVS):
        return False
    from core.engine.callbacks import CHECKPOINT_STATE
    from core.runs import RUN_FILE

    folder = Path(out)
    if not (folder / CHECKPOINT_STATE).exists() or not (folder / RUN_FILE).exists():
        return False  # stopped before its first checkpoint: started again, as any stopped run
    try:
        return json.loads((folder / RUN_FILE).read_text()).get("status") != "complete"
    except (OSError, ValueError):
        return False


def timeout_s():
    return float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_S))


def is_local():
    return os.environ.get(LOCAL_ENV) == "1"


def check(opts, backend):
    """Usage errors, before anything starts: what ``--distribute``/``--processes`` cannot do here."""
    here = world(backend)
    if here.size > 1 and opts.processes not in (1, here.size):
        raise UsageError(
            f"--processes {opts.processes}, but the launcher started {here.size} processes ({here.source}); "
            f"drop --processes under a launcher, or use --processes {here.size}"
        )
    processes = max(opts.processes, here.size)
    if opts.distribute == "model" and backend != "jax":
        raise UsageError(
            f"--distribute model needs the jax backend (keras.distribution.ModelParallel); on {backend} use "
            "--distribute data (with --processes N for several processes)"
        )
    if processes > 1 and opts.distribute != "data":
        raise UsageError(
            f"{processes} processes train data-parallel only: add --distribute data "
            f"(--distribute {opts.distribute} runs in one process)"
        )
    if processes > 1 and opts.batch_size % processes:
        low = opts.batch_size - opts.batch_size % processes
        raise UsageError(
            f"--batch-size {opts.batch_size} is the global batch, divided among {processes} processes: "
            f"use a multiple of {processes} (e.g. {low or processes} or {low + processes})"
        )
    if processes > 1 and opts.augment:
        raise UsageError(f"--augment does not run in {processes} processes yet; drop --augment or use 1 process")
    return processes


def describe(backend, processes):
    """What run.json records of a multi-process run."""
    here = world(backend)
    return {
        "processes": processes,
        "engine": ENGINES[backend],
        "launcher": "kerastack --processes" if is_local() else (here.source or "kerastack --processes"),
    }


@contextlib.contextmanager
def rank_folder(out, resume_from):
    """The folder this process writes: the run folder on rank 0; on the other ranks a private
    temporary folder (they save as rank 0 does, as TensorFlow's collective reads need, and it is
    removed after), holding copies of what a resumed run reads."""
    here = world()
    if here.writer:
        yield out
        return
    # Inside the launcher's folder when there is one: it goes with it, even after a SIGKILL here.
    scratch = Path(tempfile.mkdtemp(prefix=f"kerastack-rank{here.rank}-", dir=os.environ.get(SCRATCH_ENV) or None))
    try:
        if resume_from:
            (scratch / "run").mkdir()
            for name in ("run.json", "history.csv", "checkpoint.keras", "checkpoint.json", "best.keras"):
                if (Path(out) / name).exists():
                    shutil.copyfile(Path(out) / name, scratch / "run" / name)
        yield scratch / "run"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
