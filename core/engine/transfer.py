"""Transfer learning: start from another run's weights, freeze a backbone, or train LoRA adapters."""

from core.errors import UsageError

FREEZE = ("none", "backbone")
LORA_LAYERS = ("Dense", "EinsumDense", "Embedding")


def weighted_layers(model):
    """The leaf layers that own weights, in model order."""
    return [
        layer
        for layer in model._flatten_layers(include_self=False, recursive=True)
        if layer.weights and not any(c.weights for c in layer._flatten_layers(include_self=False, recursive=False))
    ]


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


def freeze(model, mode, initialized):
    """``backbone``: freeze every layer initialized from another run (or, without one, every layer
    but the last with weights) so that only the new head trains. ``none``: train everything."""
    if mode not in FREEZE:
        raise UsageError(f"--freeze {mode!r}: valid: {', '.join(FREEZE)}")
    if mode == "none":
        return
    layers = weighted_layers(model)
    backbone = (
        {id(layer) for layer in layers if id(layer) in initialized}
        if initialized
        else {id(layer) for layer in layers[:-1]}
    )
    for layer in layers:
        if id(layer) in backbone:
            layer.trainable = False


def enable_lora(model, rank, initialized):
    """LoRA on the pretrained Dense/EinsumDense/Embedding layers; every other pretrained weight is
    frozen, and layers new to this run (a new head) train fully. Returns the layers adapted."""
    if rank < 1:
        raise UsageError(f"--lora-rank must be at least 1, got {rank}")
    layers = weighted_layers(model)
    pretrained = (
        {id(layer) for layer in layers if id(layer) in initialized}
        if initialized
        else {id(layer) for layer in layers[:-1]}
    )
    adapted = []
    for layer in layers:
        if id(layer) not in pretrained:
            continue
        if type(layer).__name__ in LORA_LAYERS:
            layer.enable_lora(rank)
            adapted.append(layer.name)
        else:
            layer.trainable = False
    if not adapted:
        raise UsageError(f"--lora-rank: the model has no pretrained {', '.join(LORA_LAYERS)} layer to adapt")
    return adapted


def parameter_counts(model):
    import numpy as np

    trainable = int(sum(np.prod(v.shape) for v in model.trainable_weights))
    total = int(sum(np.prod(v.shape) for v in model.weights))
    return trainable, total
