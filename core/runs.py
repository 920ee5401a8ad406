"""Run directories: what a training run leaves behind, written atomically, and read back."""

import contextlib
import csv
import io
import json
import os
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from .errors import KerastackError

MODEL_FILE = "model.keras"
RUN_FILE = "run.json"
_UMASK = os.umask(0o022)
os.umask(_UMASK)
METRICS_FILE = "metrics.json"
PARTIAL = ".partial-"  # in the names of atomic_path's temporary files
HISTORY_FILE = "history.csv"


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path`` (same suffix); rename it over ``path`` on success.

    A crash at any moment leaves either the old file or the new one, never a truncated file.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Hidden, marked and with the real suffix (keras wants ".keras"): readers skip names starting
        # with "."; a writer holding the run's lock removes those a killed process left (remove_partials).
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}{PARTIAL}", suffix=path.suffix or ".tmp",
                                   dir=path.parent)
        os.close(fd)
        tmp = Path(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; the final file gets the usual mode
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:  # disk full, read-only folder, permission denied
        kept = "the previous file is unchanged" if path.exists() else "nothing was written"
        raise KerastackError(f"{path}: cannot write: {exc.strerror or exc}; {kept}") from exc
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def remove_partials(folder):
    """Delete the temporary files that writers killed mid-write left in ``folder`` and below; call
    it only while holding the folder's lock (no live writer). Returns how many were removed."""
    found = [p for p in Path(folder).rglob(f".*{PARTIAL}*") if p.is_file()]
    for p in found:
        p.unlink(missing_ok=True)
    return len(found)


def write_bytes(path, data):
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path, text):
    return write_bytes(path, text.encode("utf-8"))


def write_json(path, obj):
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_default) + "\n")


def write_csv(path, rows):
    """``rows``: a list of dicts, as one CSV whose header is the union of their keys."""
    buf = io.StringIO()
    if rows:
        fields = list(dict.fromkeys(k for row in rows for k in row))
        writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return write_text(path, buf.getvalue())


def read_json(path, what="file"):
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise KerastackError(f"{path}: no such {what}") from None
    except (OSError, ValueError) as exc:
        raise KerastackError(f"{path}: unreadable {what}: {exc}") from None


def new_run_dir(root, arch, data):
    """A fresh directory ``root/ARCH-DATA-YYYYmmdd-HHMMSS[-N]``."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"{arch}-{data}-{stamp}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


@dataclass
class Run:
    """A run directory read back: its record, metrics and history; the model loads on demand."""

    path: Path
    record: dict
    metrics: dict = field(default_factory=dict)
    history: list = field(default_factory=list)
    _model: object = field(default=None, repr=False)

    @property
    def model(self):
        """The run's keras.Model (the trained one if this process trained it, else loaded)."""
        if self._model is None:
            self._model = load_model(self.model_path, self.record.get("custom_modules", ()))
        return self._model

    @property
    def model_path(self):
        return self.path / MODEL_FILE

    @property
    def backend(self):
        return self.record.get("training", {}).get("backend")


def inference_model(model):
    """The model that is deployed: ``model.inference_model()`` where the architecture defines one
    (a GAN's generator, a VAE's decoder, a diffusion model's denoiser), else the model itself."""
    make = getattr(model, "inference_model", None)
    return make() if callable(make) else model


def load_run(path):
    path = Path(path)
    if not path.is_dir():
        raise KerastackError(f"{path}: no such run directory")
    record = read_json(path / RUN_FILE, "run record (is this a kerastack run directory?)")
    metrics = read_json(path / METRICS_FILE, "metrics file") if (path / METRICS_FILE).exists() else {}
    history = []
    if (path / HISTORY_FILE).exists():
        with open(path / HISTORY_FILE, newline="") as f:
            history = [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(f)]
    return Run(path, record, metrics, history)


def load_model(path, modules=()):
    """Load a .keras file in safe mode (Lambda bytecode refused).

    ``modules`` are the modules that define the model's custom layers (recorded by training in
    ``run.json``): Keras finds registered classes only once their module is imported, and imports
    none but its own.
    """
    import importlib

    import keras

    path = Path(path)
    if path.is_dir():
        raise KerastackError(f"{path}: is a folder, expected a .keras model file")
    if not path.is_file():
        raise KerastackError(f"{path}: no such model file (did the run finish?)")
    if not zipfile.is_zipfile(path):
        # Keras would say "File not found" of a file that is there, only damaged.
        raise KerastackError(f"{path}: not a valid .keras model file (a zip archive): truncated or corrupt")
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as exc:
            raise KerastackError(
                f"{path}: cannot import {module!r}, which defines layers of this model: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
    unsafe = bool(os.environ.get("KERASTACK_UNSAFE"))
    try:
        return keras.saving.load_model(path, safe_mode=not unsafe)
    except Exception as exc:
        if "safe_mode" in str(exc):
            raise KerastackError(
                f"{path}: refused: the model holds Python code (a Lambda layer), which could do "
                "anything when loaded; pass --unsafe only if you trust where this file came from"
            ) from exc
        text = " ".join(str(exc).split())[:300]
        raise KerastackError(f"{path}: cannot load the model: {type(exc).__name__}: {text}") from exc


def _number(text):
    for kind in (int, float):
        try:
            return kind(text)
        except (TypeError, ValueError):
            pass
    return text


def _default(obj):
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    return repr(obj)


class RunLock:
    """``RUN/.lock`` holding the writer's pid: a second writer of the same run directory is refused;
    a lock left by a dead process is taken over (and said so)."""

    def __init__(self, run_dir):
        self.path = Path(run_dir) / ".lock"

    def __enter__(self):
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                pid = self._owner()
                if pid is not None and _alive(pid):
                    raise KerastackError(f"{self.path.parent} is being written by process {pid} "
                                         f"(lock file {self.path})") from None
                print(f"kerastack: taking over {self.path} left by process {pid}, which is gone")
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as f:
                f.write(str(os.getpid()))
            return self
        raise KerastackError(f"cannot lock {self.path.parent}")

    def __exit__(self, *exc):
        if self._owner() == os.getpid():
            self.path.unlink(missing_ok=True)

    def _owner(self):
        try:
            return int(self.path.read_text().strip())
        except (OSError, ValueError):
            return None


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
