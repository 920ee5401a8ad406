"""``train()``: build an architecture for a dataset, fit it under one backend, write the run."""

import dataclasses
import secrets
import time
from pathlib import Path

from . import backend as backends
from . import transfer
from .callbacks import history_writer
from .child import call_in_backend
from .data import check_dataset, is_pair, spec_of, targets_for, task_for
from .errors import KerastackError, UsageError
from .plugins import get_plugin_host
from .runs import (HISTORY_FILE, METRICS_FILE, MODEL_FILE, RUN_FILE, atomic_path, load_run,
                   new_run_dir, write_json)
from .versions import versions


def train(arch, data, *, backend=None, epochs=10, batch_size=32, hparams=None, data_options=None,
          callbacks=(), out=None, runs_dir="runs", seed=None, plugins=(), verbose="auto",
          steps_per_epoch=None, learning_rate=None, init_from=None, freeze="none", lora_rank=None):
    """Train architecture ``arch`` on dataset ``data``; return the finished :class:`core.runs.Run`.

    ``hparams`` and ``data_options`` map names to values or to text (as from ``--hp k=v``); they are
    checked against the plugins' signatures. ``steps_per_epoch`` caps the batches per epoch (a quick
    check). Transfer learning: ``init_from`` (a run directory) copies every matching layer's
    weights, ``freeze="backbone"`` trains only the new head, ``lora_rank`` trains LoRA adapters on
    the pretrained Dense/EinsumDense/Embedding layers. If this process already runs keras under
    another backend, the training runs in a child process with ``backend``.
    """
    host = get_plugin_host(plugins)
    arch_entry = host.registry("architecture").get(arch)
    data_entry = host.registry("dataset").get(data)
    hparams = arch_entry.options(hparams)
    data_options = data_entry.options(data_options)
    callback_entries = [host.registry("callback").get(name) for name in callbacks]
    if int(epochs) < 1:
        raise UsageError(f"--epochs must be at least 1, got {epochs}")
    if int(batch_size) < 1:
        raise UsageError(f"--batch-size must be at least 1, got {batch_size}")
    if steps_per_epoch is not None and int(steps_per_epoch) < 1:
        raise UsageError(f"--steps-per-epoch must be at least 1, got {steps_per_epoch}")
    if learning_rate is not None and not float(learning_rate) > 0:
        raise UsageError(f"--learning-rate must be positive, got {learning_rate}")
    if freeze not in transfer.FREEZE:
        raise UsageError(f"--freeze {freeze!r}: valid: {', '.join(transfer.FREEZE)}")
    if lora_rank is not None and int(lora_rank) < 1:
        raise UsageError(f"--lora-rank must be at least 1, got {lora_rank}")
    source = load_run(init_from) if init_from else None
    backend = backends.resolve(backend)
    seed = secrets.randbelow(2**31) if seed is None else int(seed)
    out = Path(out) if out else new_run_dir(runs_dir, arch, data)
    if (out / RUN_FILE).exists():
        raise UsageError(f"{out} already holds a run; choose another --out")

    kwargs = dict(arch=arch, data=data, backend=backend, epochs=int(epochs), batch_size=int(batch_size),
                  hparams=hparams, data_options=data_options, callbacks=list(callbacks), out=str(out),
                  seed=seed, plugins=list(plugins), verbose=verbose, steps_per_epoch=steps_per_epoch,
                  learning_rate=learning_rate, init_from=str(init_from) if init_from else None,
                  freeze=freeze, lora_rank=lora_rank)
    if not backends.can_use(backend):
        call_in_backend(backend, "core.training:_train_json", kwargs)
        return load_run(out)

    keras = backends.use(backend)
    keras.utils.set_random_seed(seed)
    dataset = data_entry.call(**data_options)
    check_dataset(dataset, f"{data_entry.owner} from {data_entry.plugin.label()}")
    spec = spec_of(dataset)
    spec = dataclasses.replace(spec, task=task_for(spec, arch_entry.extra["tasks"], arch, data))
    model = arch_entry.call(spec, **hparams)
    if not isinstance(model, keras.Model):
        raise KerastackError(
            f"{arch_entry.owner} from {arch_entry.plugin.label()}: build() returned "
            f"{type(model).__name__}, expected a keras.Model"
        )
    transferred = _transfer(model, source, freeze, lora_rank)
    if not model.compiled:
        _compile_for_task(keras, model, spec.task, arch, learning_rate or 1e-3)
    elif learning_rate is not None:
        model.optimizer.learning_rate = float(learning_rate)
    trainable, total = transfer.parameter_counts(model)

    out.mkdir(parents=True, exist_ok=True)
    record = {
        "status": "running",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "architecture": _plugin_record(arch_entry, hparams),
        "dataset": _plugin_record(data_entry, data_options),
        "spec": {"input_shape": list(spec.input_shape), "num_classes": spec.num_classes,
                 "task": spec.task, "class_names": list(spec.class_names or []) or None,
                 "input_dtype": spec.input_dtype, "vocab_size": spec.vocab_size},
        "training": {"backend": backend, "epochs": int(epochs), "batch_size": int(batch_size),
                     "seed": seed, "callbacks": list(callbacks), "steps_per_epoch": steps_per_epoch,
                     "learning_rate": learning_rate},
        "transfer": transferred,
        "plugins": [_absolute(p) for p in plugins],
        "custom_modules": custom_modules(model),
        "versions": versions(),
    }
    write_json(out / RUN_FILE, record)

    cbs = [history_writer(out / HISTORY_FILE)]
    cbs += [_make_callback(keras, e) for e in callback_entries]
    started = time.perf_counter()
    history = _fit(model, dataset, int(epochs), int(batch_size), cbs, verbose, arch, data, spec,
                   steps_per_epoch)
    seconds = time.perf_counter() - started

    metrics = {"backend": backend, "epochs": len(history.epoch), "seconds": round(seconds, 3),
               "trainable_params": trainable, "total_params": total}
    metrics.update({k: float(v[-1]) for k, v in history.history.items() if v})
    if dataset.test is not None:
        test = targets_for(spec.task, dataset.test)
        metrics.update({f"test_{k}": float(v) for k, v in _evaluate(model, test, batch_size).items()})
    with atomic_path(out / MODEL_FILE) as tmp:
        model.save(tmp)
    write_json(out / METRICS_FILE, metrics)
    record["status"] = "complete"
    write_json(out / RUN_FILE, record)
    run = load_run(out)
    run._model = model
    return run


def _train_json(**kwargs):
    return str(train(**kwargs).path)


def custom_modules(model):
    """Modules (other than keras's) whose classes the model is made of; imported again at load."""
    objects = [model, *model._flatten_layers(include_self=False, recursive=True)]
    return sorted({type(o).__module__ for o in objects if type(o).__module__.split(".")[0] != "keras"})


def _absolute(plugin):
    """``--plugin`` files are recorded with absolute paths so the run exports from any directory."""
    return str(Path(plugin).resolve()) if plugin.endswith(".py") or "/" in plugin else plugin


def _plugin_record(entry, options):
    info = entry.plugin
    out = {"name": entry.name, "plugin": info.name, "origin": info.origin}
    if info.package:
        out.update(package=info.package, version=info.version)
    out["options"] = options
    return out


def _transfer(model, source, freeze, lora_rank):
    """Apply --init-from, --freeze and --lora-rank; what was done, for run.json."""
    if source is None and freeze == "none" and lora_rank is None:
        return None
    initialized = transfer.init_from(model, source.model) if source is not None else set()
    out = {"init_from": str(source.path) if source else None, "freeze": freeze, "lora_rank": lora_rank}
    if source is not None:
        out["matched_layers"] = len(initialized)
        out["layers"] = len(transfer.weighted_layers(model))
        print(f"init-from {source.path}: {out['matched_layers']} of {out['layers']} layers matched "
              "(name and weight shapes)")
    transfer.freeze(model, freeze, initialized)
    if lora_rank is not None:
        out["lora_layers"] = transfer.enable_lora(model, int(lora_rank), initialized)
    return out


def _compile_for_task(keras, model, task, arch, learning_rate):
    if task == "classification":
        model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    elif task in ("regression", "reconstruction"):
        model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse", metrics=["mae"])
    else:
        raise KerastackError(
            f"architecture {arch!r} returned an uncompiled model for task {task!r}; "
            "compile it in build() (the core compiles classification, regression and reconstruction)"
        )


def _make_callback(keras, entry):
    cb = entry.call()
    if not isinstance(cb, keras.callbacks.Callback):
        raise KerastackError(
            f"{entry.owner} from {entry.plugin.label()} returned {type(cb).__name__}, "
            "expected a keras.callbacks.Callback"
        )
    return cb


def _fit(model, dataset, epochs, batch_size, callbacks, verbose, arch, data, spec, steps_per_epoch):
    train, val = targets_for(spec.task, dataset.train), targets_for(spec.task, dataset.validation)
    common = dict(epochs=epochs, callbacks=callbacks, verbose=verbose)
    if steps_per_epoch:
        common.update(steps_per_epoch=steps_per_epoch, validation_steps=steps_per_epoch)
    try:
        if is_pair(train):
            if steps_per_epoch:  # a quick check: no more samples than the steps will use
                n = steps_per_epoch * batch_size
                train = (train[0][:n], None if train[1] is None else train[1][:n])
                val = None if val is None else (val[0][:n], None if val[1] is None else val[1][:n])
            return model.fit(train[0], train[1], batch_size=batch_size,
                             validation_data=tuple(val) if val is not None else None, **common)
        return model.fit(train, validation_data=val, **common)
    except KerastackError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise KerastackError(
            f"training {arch!r} on {data!r} (input shape {spec.input_shape}) failed: "
            f"{type(exc).__name__}: {first}"
        ) from exc


def _evaluate(model, split, batch_size):
    if is_pair(split):
        return model.evaluate(split[0], split[1], batch_size=batch_size, verbose=0, return_dict=True)
    return model.evaluate(split, verbose=0, return_dict=True)
