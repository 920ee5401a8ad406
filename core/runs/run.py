"""Run directories: what a training run leaves behind, read back."""

import csv
import os
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import KerastackError
from core.files import read_json

MODEL_FILE = "model.keras"
RUN_FILE = "run.json"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.csv"


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
                f"{path}: cannot import {module!r}, which defines layers of this model: {type(exc).__name__}: {exc}"
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
