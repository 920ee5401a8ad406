"""Which layers of a run's model train: ``--freeze backbone`` and ``--lora-rank`` applied to a model,
and applied again to a model loaded from a .keras file that lost them (a KerasHub backbone is rebuilt
from its constructor arguments: its inner layers' ``trainable`` flags and LoRA adapters are not
restored), so that its trainable variables, and with them the saved optimizer state, match again."""

from core.errors import KerastackError, UsageError

FREEZE = ("none", "backbone")


class UnrecordedLayers(KerastackError):
    """A run with ``--init-from`` written before run.json listed the layers it initialized: the
    layers it froze cannot be told, so its optimizer state cannot be set (its weights load)."""


LORA_LAYERS = ("Dense", "EinsumDense", "Embedding")


def weighted_layers(model):
    """The leaf layers that own weights, in model order."""
    return [
        layer
        for layer in model._flatten_layers(include_self=False, recursive=True)
        if layer.weights and not any(c.weights for c in layer._flatten_layers(include_self=False, recursive=False))
    ]


def freeze(model, mode, initialized):
    """``backbone``: freeze every layer initialized from another run (or, without one or when every
    layer was, every layer but the last with weights) so that only the head trains. ``none``: train
    everything."""
    if mode not in FREEZE:
        raise UsageError(f"--freeze {mode!r}: valid: {', '.join(FREEZE)}")
    if mode == "none":
        return
    layers = weighted_layers(model)
    backbone = _pretrained(layers, initialized)
    for layer in layers:
        if id(layer) in backbone:
            layer.trainable = False


def enable_lora(model, rank, initialized):
    """LoRA on the pretrained Dense/EinsumDense/Embedding layers; every other pretrained weight is
    frozen, and layers new to this run (a new head) train fully. Returns the layers adapted.
    A layer whose LoRA is enabled already (loaded from its own config) keeps it."""
    if rank < 1:
        raise UsageError(f"--lora-rank must be at least 1, got {rank}")
    layers = weighted_layers(model)
    pretrained = _pretrained(layers, initialized)
    adapted = []
    for layer in layers:
        if id(layer) not in pretrained:
            continue
        if type(layer).__name__ in LORA_LAYERS:
            if not getattr(layer, "lora_enabled", False):
                layer.enable_lora(rank)
            adapted.append(layer.name)
        else:
            layer.trainable = False
    if not adapted:
        raise UsageError(f"--lora-rank: the model has no pretrained {', '.join(LORA_LAYERS)} layer to adapt")
    return adapted


def unfreeze_for_fine_tuning(model):
    """``--fine-tune-after``'s second phase: every layer trains but BatchNormalization (a frozen
    BatchNorm runs in inference mode: its statistics stay), as keras.io's transfer-learning guide."""
    for layer in weighted_layers(model):
        layer.trainable = type(layer).__name__ != "BatchNormalization"


def initialized_positions(model, initialized):
    """The positions in ``weighted_layers(model)`` of the layers in ``initialized`` (ids), for run.json."""
    return [i for i, layer in enumerate(weighted_layers(model)) if id(layer) in initialized]


def sets_trainable(transfer):
    """Whether a run's ``transfer`` (run.json) froze layers or enabled LoRA."""
    return bool(transfer) and (transfer.get("freeze", "none") != "none" or transfer.get("lora_rank") is not None)


def reapply(model, transfer, epoch=None):
    """Set the trainable layers of ``model`` (just loaded) as the run's ``transfer`` (run.json) left
    them at the end of epoch ``epoch`` (``None``: at the end of the run): frozen backbone, LoRA
    adapters (enabled afresh: Keras saves a LoRA layer's kernel merged, so the model computes what
    it did), and after ``--fine-tune-after`` N (from epoch N + 1) every layer but BatchNorm."""
    if not sets_trainable(transfer):
        return
    layers = weighted_layers(model)
    initialized = set()
    if transfer.get("init_from"):
        positions = transfer.get("initialized_layers")
        if positions is None or any(not 0 <= p < len(layers) for p in positions):
            raise UnrecordedLayers(
                "its optimizer state does not load, and the frozen layers cannot be set again: run.json's "
                "transfer does not list the layers initialized from --init-from (a run written before "
                "they were recorded)"
            )
        initialized = {id(layers[p]) for p in positions}
    freeze(model, transfer.get("freeze", "none"), initialized)
    if transfer.get("lora_rank") is not None:
        enable_lora(model, int(transfer["lora_rank"]), initialized)
    after = transfer.get("fine_tune_after")
    if "fine_tune_rate" in transfer and after and (epoch is None or epoch > after):
        unfreeze_for_fine_tuning(model)


def _pretrained(layers, initialized):
    """The backbone: the layers initialized from another run; without one, or where every layer came
    from it (the same architecture: freezing them all would leave nothing to train), every layer but
    the last with weights, the head."""
    if initialized and not all(id(layer) in initialized for layer in layers):
        return {id(layer) for layer in layers if id(layer) in initialized}
    return {id(layer) for layer in layers[:-1]}
