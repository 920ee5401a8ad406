"""Run directories: what a training run leaves behind, read back."""

import csv
import json
import os
import sys
import time
import warnings
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import KerastackError
from core.files import read_json
from core.runs.optimizer_state import restore_optimizer
from core.runs.trainable import UnrecordedLayers, reapply, sets_trainable

MODEL_FILE = "model.keras"
RUN_FILE = "run.json"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.csv"

# Modules that moved, and where their classes are now: runs and .keras files written before a move
# name the old path (run.json's ``custom_modules``, the config's ``module`` keys); Keras finds a class
# by its registered name, which did not change, once the module now holding it is imported.
LEGACY_MODULES = {
    "core.losses": ("core.engine.losses",),  # issue "The house"
    "core.schedules": ("core.engine.schedules",),
    # issue 24: each generative family one package, its Keras classes in its ``layers`` module
    "plugins.architectures._layers.gan": ("plugins.architectures.gan.layers",),
    "plugins.architectures._layers.diffusion": ("plugins.architectures.diffusion.layers",),
    "plugins.architectures._layers.vae": ("plugins.architectures.autoencoder.layers",),
    # before the families had a module each, they shared this one
    "plugins.architectures._layers.generative": (
        "plugins.architectures.gan.layers",
        "plugins.architectures.diffusion.layers",
        "plugins.architectures.autoencoder.layers",
    ),
}
# Top-level packages whose classes Keras finds by itself: never imported for a model.
_NOT_CUSTOM = ("keras", "builtins")
# Keras's warning (not an error) when the saved optimizer has another number of variables.
_SKIPPED_OPTIMIZER = "Skipping variable loading for optimizer"


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
    """A run directory read back: ``record`` (``run.json``), ``metrics`` (``metrics.json``, empty
    until the run finishes) and ``history`` (``history.csv``, a dict per epoch); the model loads on
    demand."""

    path: Path
    record: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    _model: Any = field(default=None, repr=False)

    @property
    def model(self) -> Any:
        """The run's keras.Model (the trained one if this process trained it, else loaded, with its
        optimizer state; without it, and a note, only where that state cannot be set: ``UnrecordedLayers``)."""
        if self._model is None:
            from core.backend import dtype_policy

            modules = self.record.get("custom_modules", ())
            # Under the run's precision: Keras wraps a mixed_float16 model's optimizer in loss
            # scaling only when the model's own policy says so, and the saved state has its variables.
            with dtype_policy(self.record.get("training", {}).get("precision") or "float32"):
                try:
                    self._model = load_model(self.model_path, modules, transfer=self.record.get("transfer"))
                except UnrecordedLayers as exc:  # the one state that cannot be set; not needed to run it
                    print(f"kerastack: note: {exc}; loaded without it", file=sys.stderr)
                    self._model = load_model(self.model_path, modules, compile=False)
        return self._model

    @property
    def model_path(self) -> Path:
        """Where the trained model is (``model.keras``; absent until the run finishes)."""
        return self.path / MODEL_FILE

    @property
    def backend(self) -> str | None:
        """The backend the run trained under."""
        return self.record.get("training", {}).get("backend")


def inference_model(model: Any) -> Any:
    """The model that is deployed: ``model.inference_model()`` where the architecture defines one
    (a GAN's generator, a VAE's decoder, a diffusion model's denoiser), else the model itself."""
    make = getattr(model, "inference_model", None)
    return make() if callable(make) else model


def load_run(path: str | os.PathLike) -> Run:
    """Read the run directory ``path`` (the model is loaded only when ``Run.model`` is asked for).

    Module paths in its ``custom_modules`` that moved in the restructuring read as they are now."""
    path = Path(path)
    if not path.is_dir():
        raise KerastackError(f"{path}: no such run directory")
    record = read_json(path / RUN_FILE, "run record (is this a kerastack run directory?)")
    if isinstance(record.get("custom_modules"), list):
        record["custom_modules"] = current_modules(record["custom_modules"])
    metrics = read_json(path / METRICS_FILE, "metrics file") if (path / METRICS_FILE).exists() else {}
    history = []
    if (path / HISTORY_FILE).exists():
        with open(path / HISTORY_FILE, newline="") as f:
            history = [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(f)]
    return Run(path, record, metrics, history)


def load_model(
    path: str | os.PathLike,
    modules: Iterable[str] = (),
    *,
    compile: bool = True,
    transfer: dict[str, Any] | None = None,
    epoch: int | None = None,
) -> Any:
    """Load a .keras file in safe mode (Lambda bytecode refused); ``compile=False`` leaves out the
    optimizer, loss and metrics (for a model that is only run, or compiled afresh).

    Keras finds a registered custom object (layer, loss, metric, constraint, regularizer,
    initializer, activation, schedule) only once its module is imported, and imports none but its
    own. The modules imported first are ``modules`` (those ``run.json`` records) and every module
    the archive's own ``config.json`` names, so that any .keras (checkpoint, export, older run)
    loads in any process; module paths that moved are mapped to where they are now.

    With ``compile`` the optimizer state loads exactly or not at all: where Keras's does not (an
    error, or its warning "Skipping variable loading for optimizer"), a model saved with the
    trainable layers of a run's ``transfer`` (run.json: ``--freeze``, ``--lora-rank``; a KerasHub
    backbone loses them, being rebuilt from its arguments) has them set again, as at the end of
    epoch ``epoch`` (``None``: of the run), and its optimizer state set variable by variable
    (``core.runs.optimizer_state``); else, or if it still does not fit, a ``KerastackError``.
    """
    path = Path(path)
    _check_model_file(path)
    import_model_modules(path, modules)
    model, reason = _keras_load(path, compile)
    if reason is None:
        return model
    if not sets_trainable(transfer):
        reason = " ".join(reason.split())[:200]
        raise KerastackError(f"{path}: its optimizer state does not load (does not fit the model): {reason}")
    model, _ = _keras_load(path, compile=False)
    try:
        reapply(model, transfer, epoch)
    except KerastackError as exc:
        raise type(exc)(f"{path}: {exc}") from exc
    restore_optimizer(model, path)
    return model


def _check_model_file(path):
    """A one-line error unless ``path`` is a file that can be a .keras archive (a zip)."""
    if path.is_dir():
        raise KerastackError(f"{path}: is a folder, expected a .keras model file")
    if not path.is_file():
        raise KerastackError(f"{path}: no such model file (did the run finish?)")
    if not zipfile.is_zipfile(path):
        # Keras would say "File not found" of a file that is there, only damaged.
        raise KerastackError(f"{path}: not a valid .keras model file (a zip archive): truncated or corrupt")


def _keras_load(path, compile):
    """``(model, None)``: the model as Keras loads it (safe mode unless ``KERASTACK_UNSAFE``); or,
    with ``compile``, ``(None, reason)`` where its optimizer state did not load (an error, or Keras's
    warning that it skipped it). Any other failure is a one-line ``KerastackError`` naming the file."""
    import keras

    unsafe = bool(os.environ.get("KERASTACK_UNSAFE"))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = keras.saving.load_model(path, compile=compile, safe_mode=not unsafe)
    except Exception as exc:
        if "safe_mode" in str(exc):
            raise KerastackError(
                f"{path}: refused: the model holds Python code (a Lambda layer), which could do "
                "anything when loaded; pass --unsafe only if you trust where this file came from"
            ) from exc
        text = " ".join(str(exc).split())[:300]
        if not (compile and "could not be loaded" in str(exc) and "optimizers" in str(exc)):
            raise KerastackError(f"{path}: cannot load the model: {type(exc).__name__}: {text}") from exc
        return None, text
    skipped = [w for w in caught if _SKIPPED_OPTIMIZER in str(w.message)]
    for w in caught:
        if w not in skipped:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if compile and skipped:
        return None, str(skipped[0].message)
    return model, None


def import_model_modules(path: str | os.PathLike, modules: Iterable[str] = ()) -> None:
    """Import what the .keras file at ``path`` needs before Keras can deserialize it: ``modules``
    (as ``run.json`` records them) and every module its ``config.json`` names, moved paths mapped.
    For code that rebuilds a model from a .keras config itself; ``load_model`` calls it."""
    import importlib

    for module in current_modules([*modules, *archive_modules(path)]):
        try:
            importlib.import_module(module)
        except Exception as exc:
            raise KerastackError(
                f"{path}: cannot import {module!r}, which defines custom objects of this model: "
                f"{type(exc).__name__}: {exc}"
            ) from exc


def current_modules(modules: Iterable[str]) -> list[str]:
    """Where the classes of ``modules`` (as a run or .keras file written before a move names them)
    are now: each module, or those ``LEGACY_MODULES`` maps it to, once, in order."""
    return list(dict.fromkeys(new for module in modules for new in LEGACY_MODULES.get(module, (module,))))


def config_modules(config: Any) -> list[str]:
    """The modules, other than Keras's own, of every serialized Keras object in ``config`` (a
    ``serialize_keras_object`` result, or a .keras file's ``config.json``): its layers, and also
    its constraints, regularizers, initializers, activations, losses, metrics, optimizer and
    learning-rate schedule, each a dict with ``module`` and ``class_name``."""
    found, stack = set(), [config]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            module = item.get("module")
            if isinstance(module, str) and "class_name" in item and is_custom_module(module):
                found.add(module)
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return sorted(found)


def is_custom_module(module: str) -> bool:
    """Whether Keras needs ``module`` imported before it can load an object of it (not its own)."""
    return module.split(".")[0] not in _NOT_CUSTOM


def archive_modules(path: str | os.PathLike) -> list[str]:
    """``config_modules`` of a .keras archive's ``config.json`` (none if it cannot be read: Keras
    then says what is wrong with the file)."""
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (KeyError, ValueError, OSError, zipfile.BadZipFile):
        return []
    return config_modules(config)


def _number(text):
    for kind in (int, float):
        try:
            return kind(text)
        except (TypeError, ValueError):
            pass
    return text
