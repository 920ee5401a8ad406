"""Transfer learning: start from another run's weights, freeze a backbone, or train LoRA adapters."""

from core.runs.trainable import (  # noqa: F401 (the names transfer had)
    FREEZE,
    LORA_LAYERS,
    enable_lora,
    freeze,
    initialized_positions,
    unfreeze_for_fine_tuning,
    weighted_layers,
)


def init_from(model, source):
    """Copy weights from ``source`` into every layer of ``model`` that matches; return the set of
    layers initialized.

    A layer matches the source layer of the same name when all weight shapes agree; failing that, the
    next unused source layer of the same class and shapes, in order (auto-generated names shift when
    a process builds several models).
    """
    src_layers = weighted_layers(source)
    by_name = {layer.name: layer for layer in src_layers}
    used, matched = set(), set()
    for layer in weighted_layers(model):
        shapes = [tuple(w.shape) for w in layer.weights]
        candidate = by_name.get(layer.name)
        if candidate is None or id(candidate) in used or _shapes(candidate) != shapes:
            candidate = next(
                (
                    s
                    for s in src_layers
                    if id(s) not in used and type(s).__name__ == type(layer).__name__ and _shapes(s) == shapes
                ),
                None,
            )
        if candidate is not None:
            layer.set_weights(candidate.get_weights())
            used.add(id(candidate))
            matched.add(id(layer))
    return matched


def _shapes(layer):
    return [tuple(w.shape) for w in layer.weights]


def parameter_counts(model):
    import numpy as np

    trainable = int(sum(np.prod(v.shape) for v in model.trainable_weights))
    total = int(sum(np.prod(v.shape) for v in model.weights))
    return trainable, total


FINE_TUNE_FACTOR = 0.1  # --fine-tune-factor's default: the rate after --fine-tune-after N epochs


def fit_then_fine_tune(model, job, fit, recompile):
    """``--fine-tune-after N`` (with ``--freeze backbone``), as keras.io's transfer-learning guide
    does it: ``fit`` the head for N epochs, then unfreeze every layer but BatchNormalization (a
    frozen BatchNorm runs in inference mode: its statistics stay) and recompile at
    ``learning rate × --fine-tune-factor``, and fit the remaining epochs.
    A run resumed after epoch N continues its checkpoint, which is unfrozen and compiled already;
    one resumed at epoch N exactly (its checkpoint written before the switch) switches first.
    Returns the History of the last ``fit``, its ``history`` holding every epoch of this call."""
    import dataclasses

    opts, after = job.opts, job.opts.fine_tune_after
    if not after or job.initial_epoch > after:
        return fit()
    first = None
    if job.initial_epoch < after:
        job.opts = dataclasses.replace(opts, epochs=after)
        try:
            first = fit()
        finally:
            job.opts = opts
        if model.stop_training or len(first.epoch) < after - job.initial_epoch:  # stopped early
            return first
    unfreeze_for_fine_tuning(model)  # keras.io: BatchNorm stays frozen
    rate = (opts.learning_rate or 1e-3) * opts.fine_tune_factor
    recompile(dataclasses.replace(opts, learning_rate=rate), opts.epochs - after)
    print(f"fine-tuning every layer from epoch {after + 1} at learning rate {rate:g}")
    job.record["transfer"] = {**(job.record.get("transfer") or {}), "fine_tune_after": after, "fine_tune_rate": rate}
    initial = job.initial_epoch
    job.initial_epoch = after
    try:
        second = fit()
    finally:
        job.initial_epoch = initial
    if first is not None:
        for key, values in first.history.items():
            second.history[key] = list(values) + list(second.history.get(key, []))
        second.epoch = list(first.epoch) + list(second.epoch)
    return second


def weights_source(hparams, init_from):
    """Where the starting weights come from, for run.json: another run (``--init-from``), a
    pretrained architecture's ``weights`` (imagenet or a file) or ``preset`` (a name or a folder),
    else random."""
    import hashlib
    from pathlib import Path

    source = {"source": "random"}
    weights, preset = hparams.get("weights"), hparams.get("preset")
    if isinstance(weights, str) and weights == "imagenet":
        source = {"source": "imagenet"}
    elif isinstance(weights, str) and weights != "none" and Path(weights).is_file():
        path = Path(weights).expanduser().resolve()
        source = {"source": "file", "path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    elif isinstance(preset, str) and preset:
        folder = Path(preset).expanduser()
        source = {"source": "preset", **({"path": str(folder.resolve())} if folder.is_dir() else {"name": preset})}
    if init_from:
        return {"source": "run", "run": str(Path(init_from).resolve()), "architecture_weights": source}
    return source
