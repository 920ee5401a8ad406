"""``fold_output_rescaling``: a model's last ``Rescaling`` folded into the linear layer before it.

A regression run's model ends in ``Rescaling(scale=std, offset=mean)`` (``target_scaling``, see
``core/engine/targets.py``): the network learns standardized targets and the layer gives them their
units back. For deployment that layer is two float ops (``MUL``, ``ADD``) after the last matmul, which
the QAT paths cannot quantize (tfmot has no Rescaling; the converter leaves a float island). The same
affine map folds exactly into the Dense or convolution that feeds it: kernel × scale, bias × scale +
offset. Every exporter, the fine-tuning jobs and ``verify`` then see a plain model whose last layer
outputs the targets' units, as models trained before the scaling did.
"""

from typing import Any

import numpy as np

# Layers whose output is ``inputs @ kernel + bias`` over the last axis, before their activation.
_LINEAR = ("Dense", "Conv1D", "Conv2D", "Conv3D")


def fold_output_rescaling(model: Any) -> Any:
    """``model`` with its output ``Rescaling`` folded into the layer before it, as a new model (the
    layers before are shared, ``model`` is not changed); ``model`` itself where there is nothing to
    fold: not a functional model with one output, an output that is not a ``Rescaling``, or one fed
    by anything but a linear Dense/Conv with a bias used by nothing else."""
    import keras

    outputs = getattr(model, "outputs", None)
    if type(model).__name__ != "Functional" or not outputs or len(outputs) != 1:
        return model
    rescaling = outputs[0]._keras_history.operation
    if not isinstance(rescaling, keras.layers.Rescaling) or len(rescaling._inbound_nodes) != 1:
        return model
    feeding = rescaling._inbound_nodes[0].input_tensors[0]
    layer = feeding._keras_history.operation
    if type(layer).__name__ not in _LINEAR or not layer.use_bias or len(layer._inbound_nodes) != 1:
        return model
    if getattr(layer.activation, "__name__", None) != "linear" or any(
        n.operation is not rescaling for n in _consumers(model, feeding)
    ):
        return model
    kernel, bias = layer.get_weights()
    scale = np.broadcast_to(np.asarray(rescaling.scale, "float64"), bias.shape)  # a number, or one per output
    offset = np.broadcast_to(np.asarray(rescaling.offset, "float64"), bias.shape)
    folded = type(layer).from_config(layer.get_config())
    out = folded(layer._inbound_nodes[0].input_tensors[0])
    folded.set_weights([(kernel * scale).astype(kernel.dtype), (bias * scale + offset).astype(bias.dtype)])
    return keras.Model(model.input, out, name=model.name)


def _consumers(model, tensor):
    """The nodes of ``model`` that take ``tensor``."""
    return [
        node
        for nodes in model._nodes_by_depth.values()
        for node in nodes
        if any(t is tensor for t in node.input_tensors)
    ]
