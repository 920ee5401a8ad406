"""Standardized regression targets, undone inside the model.

A network learns best when its outputs are of order 1: a series around 50 ± 7 otherwise spends its
first epochs moving the output bias towards 50 (issue 23: test MAE 33 after 5 epochs). The usual cure,
standardizing the targets with the training split's mean and std, leaves a model whose outputs must
be scaled back by whoever uses it, the device included. Here the scaling back is part of the model:
its output goes through a non-trainable ``keras.layers.Rescaling(scale=std, offset=mean)`` named
``target_scaling``, so the network before it learns standardized values, while the model, its loss
and metrics, ``model.keras`` and every exported file give the targets' own units. A built-in layer:
it saves and loads under every backend with no custom module. For deployment it is folded into the
linear layer before it (``core/deploy/folding.py``), so the exported files and the QAT paths see a
plain model.

Where the layer would be wrong, the model is left as it is, with a note on stderr and the reason in
run.json: a model with several outputs (which target goes where is not known), an output whose width
is not the targets', an output layer with a bounded activation (sigmoid, relu, …: rescaling would move
its range), a model with its own ``train_step`` or ``compute_loss``, a streamed train split under
several processes (each would measure its own share, and the ranks' models would differ).
A streamed train split (a ``PyDataset``) is measured on up to ``STREAM_BATCHES`` of its batches,
spread evenly over it.
"""

import sys

import numpy as np

from core.data import batch_of, is_pair
from core.task import task_named

LAYER = "target_scaling"
STREAM_BATCHES = 32  # of a streamed train split: enough samples for a mean and a std
# Output activations whose range rescaling would move (a linear output is the only one left alone).
_BOUNDED = {"sigmoid", "softmax", "relu", "relu6", "tanh", "softplus", "exponential", "hard_sigmoid", "elu", "selu"}


def statistics(y):
    """``{"mean", "std", "samples"}`` of targets ``y`` (samples first): one value per output (the
    last axis of ``y``; one in all for 1-D targets), in float64, each std at least ``1e-12`` of its
    mean's size (a constant target keeps std 1: nothing to scale). None where ``y`` has no finite
    values to measure."""
    y = np.asarray(y, dtype="float64")
    if y.size == 0 or not np.all(np.isfinite(y)):
        return None
    flat = y.reshape(-1, 1) if y.ndim == 1 else y.reshape(-1, y.shape[-1])
    mean, std = flat.mean(axis=0), flat.std(axis=0)
    std = np.where(std > 1e-12 * np.maximum(np.abs(mean), 1.0), std, 1.0)
    return {"mean": [float(m) for m in mean], "std": [float(s) for s in std], "samples": int(len(y))}


def train_statistics(split, processes=1):
    """``(statistics, None)`` of a train split's targets, or ``(None, reason)`` where they are not
    measured: no targets, values that are not finite, a stream shared among several processes."""
    if is_pair(split):
        targets = split[1]
    elif processes > 1:
        return None, f"each of the {processes} processes streams its own share of the train split"
    else:
        picked = np.unique(np.linspace(0, len(split) - 1, min(len(split), STREAM_BATCHES)).round().astype(int))
        targets = [batch_of(split, int(i))[1] for i in picked]
        targets = None if any(t is None for t in targets) else np.concatenate([np.asarray(t) for t in targets])
    if targets is None:
        return None, "the train split has no targets"
    stats = statistics(targets)
    return (stats, None) if stats else (None, "the train split's targets hold NaN or inf")


def unscalable(keras, model, stats):
    """Why ``model``'s output cannot be rescaled to the targets of ``stats``; None if it can."""
    if type(model).train_step is not keras.Model.train_step or type(model).compute_loss is not keras.Model.compute_loss:
        return f"{type(model).__name__} trains with its own train_step or compute_loss"
    outputs = _outputs(keras, model)
    if outputs is None:
        return None  # a subclassed model: its output is rescaled from outside, as it is
    if len(outputs) != 1:
        return f"the model has {len(outputs)} outputs (which target goes to which is not known)"
    width = outputs[0].shape[-1] if len(outputs[0].shape) > 1 else 1
    if len(stats["mean"]) > 1 and width != len(stats["mean"]):
        return f"its output is {width} wide, the targets {len(stats['mean'])}"
    activation = _activation(keras, outputs[0])
    if activation in _BOUNDED:
        return f"its output layer ends in {activation} (rescaling would move the range it keeps to)"
    return None


def rescaled(keras, model, spec, stats):
    """``model`` with its output rescaled, ``y = z * std + mean``, by a non-trainable layer; compiled
    again as it was, if the architecture compiled it."""
    one = len(stats["mean"]) == 1
    layer = keras.layers.Rescaling(
        scale=stats["std"][0] if one else list(stats["std"]),
        offset=stats["mean"][0] if one else list(stats["mean"]),
        name=LAYER,
        dtype="float32",  # mixed precision: the targets' units in float32, as a float16 output would not hold them
    )
    outputs = _outputs(keras, model)
    if outputs is not None:
        inputs = model.inputs[0] if isinstance(model, keras.Sequential) else model.input  # a dict stays one
        wrapped = keras.Model(inputs, layer(outputs[0]), name=model.name)
    else:  # subclassed: called on a new input
        inputs = keras.Input(tuple(spec.input_shape), dtype=spec.input_dtype)
        wrapped = keras.Model(inputs, layer(model(inputs)), name=model.name)
    if model.compiled:
        wrapped.compile(**dict(model._compile_config.config))
    return wrapped


def standardize(keras, model, spec, train, *, enabled=True, processes=1, where=""):
    """``(model, entry)`` for a new run: a regression model rescaled to the train split's targets and
    run.json's ``spec.target_scaling`` (``mean``, ``std``, ``samples``, ``layer``), or the model as
    it is with ``{"skipped": reason}`` (also said on stderr, naming ``where``), or with None for
    other tasks or ``--no-standardize-targets``."""
    if not task_named(spec.task).continuous or not enabled:
        return model, None
    stats, reason = train_statistics(train, processes)
    reason = reason or unscalable(keras, model, stats)
    if reason:
        print(f"kerastack: note: {where}{spec.task} targets not standardized: {reason}", file=sys.stderr)
        return model, {"skipped": reason}
    return rescaled(keras, model, spec, stats), {**stats, "layer": LAYER}


def _outputs(keras, model):
    """The output tensors of a functional (or built Sequential) model; None for a subclassed one."""
    from keras.src.models.functional import Functional

    if isinstance(model, Functional) or (isinstance(model, keras.Sequential) and model.built):
        return list(model.outputs)
    return None


def _activation(keras, tensor):
    """The name of the activation that makes ``tensor``: the ``activation`` of the layer that
    outputs it, or an activation layer's own; None for a linear output."""
    layer = tensor._keras_history.operation
    names = {"ReLU": "relu", "Softmax": "softmax", "ELU": "elu"}
    if type(layer).__name__ in names:
        return names[type(layer).__name__]
    function = getattr(layer, "activation", None)
    name = getattr(function, "__name__", None)
    return None if name in (None, "linear") else name
