"""Run configuration files: ``kerastack train --config run.toml`` (or a run's own ``run.json``).

A TOML file::

    arch = "cnn"
    data = "digits"
    backend = "jax"          # also: seed, out, callbacks = [...], plugins = [...]

    [hparams]
    filters = 32

    [data_options]
    validation = 0.2

    [training]               # any TrainingOptions field: epochs, optimizer, schedule, ...
    epochs = 20
    optimizer = "adamw"

    [transfer]               # init_from, freeze, lora_rank
    freeze = "none"

    [[export]]               # exports to run after training
    to = "tflite"
    options = { quantize = "int8" }

Command-line flags override the file. Unknown keys are errors naming the key, the file and the
closest valid key. Parsed with the standard library (``tomllib``/``json``): no code runs.
"""

import json
import tomllib
from dataclasses import fields
from pathlib import Path

from core.engine.options import TrainingOptions
from core.errors import UsageError, choices_text, did_you_mean

TOP = (
    "arch",
    "data",
    "backend",
    "seed",
    "out",
    "callbacks",
    "plugins",
    "hparams",
    "data_options",
    "training",
    "transfer",
    "export",
)
TRANSFER = ("init_from", "freeze", "lora_rank")
EXPORT = ("to", "options")


def load_config(path):
    """The normalized configuration in ``path`` (.toml, or a run's run.json / run directory)."""
    path = Path(path)
    if path.is_dir():
        path = path / "run.json"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--config {path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"--config {path}: not UTF-8 text (byte {exc.start})") from None
    if path.suffix == ".json":
        try:
            return _from_run_record(json.loads(text), path)
        except json.JSONDecodeError as exc:
            raise UsageError(f"--config {path}: not valid JSON: {exc}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"--config {path}: not valid TOML: {exc}") from None
    _check_keys(raw, TOP, path, "")
    _check_keys(raw.get("training", {}), [f.name for f in fields(TrainingOptions)], path, "training.")
    _check_keys(raw.get("transfer", {}), TRANSFER, path, "transfer.")
    exports = raw.get("export", [])
    if not isinstance(exports, list):
        raise UsageError(f"--config {path}: 'export' must be an array of tables ([[export]])")
    for item in exports:
        if not isinstance(item, dict):
            raise UsageError(f"--config {path}: 'export' must be an array of tables ([[export]])")
        _check_keys(item, EXPORT, path, "export.")
        if "to" not in item:
            raise UsageError(f"--config {path}: every [[export]] needs 'to' (the exporter's name)")
    for table in ("hparams", "data_options", "training", "transfer"):
        if not isinstance(raw.get(table, {}), dict):
            raise UsageError(f"--config {path}: {table!r} must be a table")
    for item in exports:
        if not isinstance(item.get("to"), str) or not isinstance(item.get("options", {}), dict):
            raise UsageError(f"--config {path}: an [[export]] needs 'to' as text and 'options' as a table")
    _check_types(raw, TYPES, path, "")
    _check_types(raw.get("transfer", {}), TRANSFER_TYPES, path, "transfer.")
    return raw


# The type each value must have (the tables are checked above; training values by TrainingOptions).
TYPES = {"arch": str, "data": str, "backend": str, "seed": int, "out": str, "callbacks": [str], "plugins": [str]}
TRANSFER_TYPES = {"init_from": str, "freeze": str, "lora_rank": int}
_NAMES = {str: "text", int: "an integer"}


def _check_types(table, types, path, prefix):
    for key, kind in types.items():
        if key not in table:
            continue
        value = table[key]
        if isinstance(kind, list):
            ok = isinstance(value, list) and all(isinstance(v, kind[0]) for v in value)
            what = f"a list of {_NAMES[kind[0]]}"
        else:
            ok = isinstance(value, kind) and not isinstance(value, bool)
            what = _NAMES[kind]
        if not ok:
            raise UsageError(f"--config {path}: {prefix}{key} must be {what}, got {value!r}")


def _from_run_record(record, path):
    """A run.json as a configuration that reproduces that run."""
    try:
        training = dict(record["training"])
        config = {
            "arch": record["architecture"]["name"],
            "hparams": record["architecture"].get("options", {}),
            "data": record["dataset"]["name"],
            "data_options": record["dataset"].get("options", {}),
            "backend": training.pop("backend"),
            "seed": training.pop("seed"),
            "callbacks": training.pop("callbacks", []),
            "plugins": record.get("plugins", []),
        }
    except (KeyError, TypeError) as exc:
        raise UsageError(f"--config {path}: not a kerastack run record (missing {exc})") from None
    config["training"] = {k: v for k, v in training.items() if v is not None}
    transfer = record.get("transfer") or {}
    config["transfer"] = {k: transfer[k] for k in TRANSFER if transfer.get(k) not in (None, "none")}
    return config


def _check_keys(table, valid, path, prefix):
    if not isinstance(table, dict):
        return
    for key in table:
        if key not in valid:
            raise UsageError(
                f"--config {path}: unknown key {prefix}{key!r}{did_you_mean(key, valid)}; valid: {choices_text(valid)}"
            )
