"""A new run's record: ``train()``'s arguments checked and turned into what run.json holds."""

import dataclasses
import os
import secrets
import time
from pathlib import Path

from core import backend as backends
from core.engine import distributed, transfer
from core.engine.backends import for_backend
from core.errors import UsageError
from core.plugins import get_plugin_host
from core.runs import load_run
from core.runs.versions import versions


def plugin_entries(plugins, arch, data, callbacks):
    """The registry entries of the architecture and the dataset; an error for any unknown name."""
    host = get_plugin_host(plugins)
    arch_entry, data_entry = host.registry("architecture").get(arch), host.registry("dataset").get(data)
    for name in callbacks:
        host.registry("callback").get(name)
    return arch_entry, data_entry


def training_request(opts, backend, seed, callbacks):
    """The training settings, as run.json records them (a random seed is drawn and kept)."""
    return {
        "backend": backend,
        "seed": secrets.randbelow(2**31) if seed is None else int(seed),
        **opts.to_dict(),
        "callbacks": list(callbacks),
    }


def transfer_request(init_from, freeze, lora_rank):
    """The transfer settings asked for, as run.json records them until the model is built."""
    return {
        "init_from": str(Path(init_from).resolve()) if init_from else None,
        "freeze": freeze,
        "lora_rank": None if lora_rank is None else int(lora_rank),
    }


def _check_transfer(freeze, lora_rank, init_from):
    """Refuse bad --freeze, --lora-rank and --init-from values before anything is written."""
    if freeze not in transfer.FREEZE:
        raise UsageError(f"--freeze {freeze!r}: valid: {', '.join(transfer.FREEZE)}")
    if lora_rank is not None and int(lora_rank) < 1:
        raise UsageError(f"--lora-rank must be at least 1, got {lora_rank}")
    if init_from is not None:
        load_run(init_from)  # fail early on a bad directory


def _absolute(plugin):
    """``--plugin`` files are recorded with absolute paths so the run exports from any directory."""
    return str(Path(plugin).resolve()) if plugin.endswith(".py") or os.sep in plugin else plugin


def _plugin_record(entry, options):
    info = entry.plugin
    out = {"name": entry.name, "plugin": info.name, "origin": info.origin}
    if info.package:
        out.update(package=info.package, version=info.version)
    out["options"] = options
    return out


def check_request(opts, backend, *, freeze, lora_rank, init_from, seed, out):
    """The options and the backend of a new run, checked before anything is written; the number of
    processes decided once, here (``--processes``, or the launcher's), and kept in the options."""
    _check_transfer(freeze, lora_rank, init_from)
    if opts.fine_tune_after and freeze != "backbone":
        raise UsageError(f"--fine-tune-after {opts.fine_tune_after} needs --freeze backbone (got --freeze {freeze})")
    backend = backends.resolve(backend)
    for_backend(backend).check(opts)
    opts = dataclasses.replace(opts, processes=distributed.check(opts, backend))
    if distributed.world(backend).size > 1 and (seed is None or out is None):
        raise UsageError("under a launcher every process needs the same --seed and --out: set both")
    return opts, backend


def new_record(arch_entry, hparams, data_entry, data_options, training, transfer_asked, plugins, tracking):
    """The run.json record of a new run: the plugins and their options, the training and transfer
    settings asked for, where the weights start, the versions; the tracking and the processes, if any."""
    record = {
        "status": None,  # "running" once run.json is written
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "architecture": _plugin_record(arch_entry, hparams),
        "dataset": _plugin_record(data_entry, data_options),
        "training": training,
        "transfer": transfer_asked,
        "initial_weights": transfer.weights_source(hparams, transfer_asked["init_from"]),
        "plugins": [_absolute(p) for p in plugins],
        "versions": versions(),
    }
    if tracking:
        record["tracking"] = tracking
    if training["processes"] > 1:
        record["distributed"] = distributed.describe(training["backend"], training["processes"])
    return record
