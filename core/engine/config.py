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

    [track]                  # log the run to MLflow (kerastack[track]); also: experiment, uri
    to = "mlflow"

    [[export]]               # exports to run after training, as `kerastack export` (report included)
    to = "tflite"
    options = { quantize = "int8" }

Command-line flags override the file. Unknown keys are errors naming the key, the file and the
closest valid key; a key in the wrong place (``epochs`` at the top level) names the table it belongs
under. The exports done are recorded in run.json (``"exports"``), so a run.json used as the
configuration exports again. Parsed with the standard library (``tomllib``/``json``): no code runs.
"""

import difflib
import json
import tomllib
from dataclasses import fields
from pathlib import Path

from core.engine.datasets import BATCH_OPTION
from core.engine.options import TrainingOptions
from core.errors import UsageError, choices_text, did_you_mean
from core.plugins import get_plugin_host
from core.tracking import TRACK_KEYS

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
    "track",
    "export",
)
TRANSFER = ("init_from", "freeze", "lora_rank")
EXPORT = ("to", "options")


def load_config(path, plugins=()):
    """The normalized configuration in ``path`` (.toml, or a run's run.json / run directory).

    ``plugins`` (the ``--plugin`` values) help name the table a misplaced key belongs in."""
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
            config = _from_run_record(json.loads(text), path)
        except json.JSONDecodeError as exc:
            raise UsageError(f"--config {path}: not valid JSON: {exc}") from None
        _check_exports(config["export"], path)
        return config
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"--config {path}: not valid TOML: {exc}") from None
    _check_top_keys(raw, path, plugins)
    _check_keys(raw.get("training", {}), [f.name for f in fields(TrainingOptions)], path, "training.")
    _check_keys(raw.get("transfer", {}), TRANSFER, path, "transfer.")
    _check_keys(raw.get("track", {}), TRACK_KEYS, path, "track.")
    for table in ("hparams", "data_options", "training", "transfer", "track"):
        if not isinstance(raw.get(table, {}), dict):
            raise UsageError(f"--config {path}: {table!r} must be a table")
    _check_exports(raw.get("export", []), path)
    _check_types(raw, TYPES, path, "")
    _check_types(raw.get("transfer", {}), TRANSFER_TYPES, path, "transfer.")
    _check_types(raw.get("track", {}), dict.fromkeys(TRACK_KEYS, str), path, "track.")
    return raw


def _check_exports(exports, path):
    """``[[export]]`` tables: each with ``to`` (text) and, optionally, ``options`` (a table)."""
    if not isinstance(exports, list):
        raise UsageError(f"--config {path}: 'export' must be an array of tables ([[export]])")
    for item in exports:
        if not isinstance(item, dict):
            raise UsageError(f"--config {path}: 'export' must be an array of tables ([[export]])")
        _check_keys(item, EXPORT, path, "export.")
        if "to" not in item:
            raise UsageError(f"--config {path}: every [[export]] needs 'to' (the exporter's name)")
        if not isinstance(item.get("to"), str) or not isinstance(item.get("options", {}), dict):
            raise UsageError(f"--config {path}: an [[export]] needs 'to' as text and 'options' as a table")


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
    config["export"] = record.get("exports", [])  # those its config asked for, done after training
    tracking = record.get("tracking") or {}
    if tracking.get("to"):  # a new run in the same experiment (the store: where the new run lives)
        config["track"] = {k: tracking[k] for k in ("to", "experiment") if tracking.get(k)}
    return config


def _check_top_keys(raw, path, plugins):
    """Unknown top-level keys: one that belongs in a table says which; else the closest valid key."""
    for key in raw:
        if key in TOP:
            continue
        tables = _tables_for(raw, plugins)
        where = [table for table, names in tables.items() if key in names]
        if where:
            raise UsageError(
                f"--config {path}: unknown key {key!r} at the top level: it belongs under "
                f"{' or '.join(where)} ({where[0]} then {key} = ...)"
            )
        guess = did_you_mean(key, TOP)
        if not guess:  # a misspelled key of a table: "epoch" for [training]'s epochs
            table_of = {name: table for table, names in tables.items() for name in names}
            close = difflib.get_close_matches(key, list(table_of), n=1, cutoff=0.6)
            guess = f" (did you mean {close[0]!r} under {table_of[close[0]]}?)" if close else ""
        raise UsageError(f"--config {path}: unknown key {key!r}{guess}; valid: {choices_text(TOP)}")


def _tables_for(raw, plugins):
    """table → the keys it takes: the fixed ones, and the architecture's and dataset's options where
    the file names plugins that can be found (``plugins``: the ``--plugin`` values)."""
    tables = {
        "[training]": [f.name for f in fields(TrainingOptions)],
        "[transfer]": TRANSFER,
        "[[export]]": EXPORT,
        "[track]": TRACK_KEYS,
    }
    kinds = {"[hparams]": ("architecture", raw.get("arch")), "[data_options]": ("dataset", raw.get("data"))}
    listed = raw.get("plugins", [])
    listed = listed if isinstance(listed, list) and all(isinstance(p, str) for p in listed) else []
    for table, (kind, name) in kinds.items():
        if not isinstance(name, str):
            continue
        try:
            host = get_plugin_host([*plugins, *[p for p in listed if p not in plugins]])
            defaults = host.registry(kind).get(name).defaults
        except Exception:  # noqa: BLE001 - a plugin or name that fails is reported when the training starts
            continue
        # A streamed dataset's batch_size is training's (--batch-size), not a dataset option to set.
        tables[table] = [k for k in defaults if not (kind == "dataset" and k == BATCH_OPTION)]
    return tables


def _check_keys(table, valid, path, prefix):
    if not isinstance(table, dict):
        return
    for key in table:
        if key not in valid:
            raise UsageError(
                f"--config {path}: unknown key {prefix}{key!r}{did_you_mean(key, valid)}; valid: {choices_text(valid)}"
            )
