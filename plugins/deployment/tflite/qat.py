"""Keras-native quantization-aware training (QAT), on any backend.

``quantize_model`` rewrites a functional model into a fake-quantized copy made of Keras 3 layers
only, so it trains under TensorFlow, JAX or torch:

- BatchNormalization right after a Conv/DepthwiseConv/Dense (its only consumer) is folded into
  that layer's kernel and bias first, as LiteRT will compute it.
- Conv/DepthwiseConv kernels: per-channel symmetric fake quantization (narrow range, range
  ``max|w|`` of each output channel, recomputed on every call); Dense and Conv2DTranspose kernels:
  per-tensor (the converter rejects per-channel ranges on fully-connected and transposed-conv kernels).
- Activations: a per-tensor :class:`ActivationQuantizer` (moving-average min/max, set by a
  calibration pass) on the float input, after each activation, and after each Dense/Conv/Add/…
  whose output is not fused into a following ReLU; none after pooling, reshape, flatten, dropout
  or softmax/sigmoid/tanh (LiteRT gives those their input's, or a fixed, range); global pooling
  gets one (LiteRT's MEAN does not inherit its input's range).

Saved as .keras, the model loads in a TensorFlow process, where Keras emits
``tf.quantization.fake_quant_*`` ops: the LiteRT converter turns them into int8 kernels with the
learned ranges, without a representative dataset.

The layer classes are in ``qat_layers``, defined on first use (``custom_objects()``), so importing
this module does not import keras; call ``custom_objects()`` before loading a saved QAT model by hand.
"""

import numpy as np

from core import UsageError
from plugins.deployment.tflite.qat_layers import custom_objects
from plugins.deployment.tflite.tuning import fit, load_for_finetuning, save

CALIBRATION_SAMPLES = 512

# Layer classes by how LiteRT treats their output range.
WEIGHTED = {"Conv1D", "Conv2D", "DepthwiseConv2D", "Conv2DTranspose", "Dense"}
PASSTHROUGH = {  # output range is the input's: no quantizer of their own
    "MaxPooling1D",
    "MaxPooling2D",
    "MaxPooling3D",
    "AveragePooling1D",
    "AveragePooling2D",
    "AveragePooling3D",
    "Reshape",
    "Flatten",
    "Dropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "GaussianNoise",
    "GaussianDropout",
    "AlphaDropout",
    "ActivityRegularization",
    "Permute",
    "ZeroPadding1D",
    "ZeroPadding2D",
    "ZeroPadding3D",
    "Cropping1D",
    "Cropping2D",
    "Cropping3D",
    "UpSampling1D",
    "UpSampling2D",
    "Identity",
    "RepeatVector",
}
COMPUTING = {  # need a range of their own
    "Add",
    "Subtract",
    "Multiply",
    "Average",
    "Maximum",
    "Minimum",
    "Concatenate",
    "BatchNormalization",
    "Rescaling",
    # LiteRT's MEAN/REDUCE_MAX get no range from their input: without one they run in float.
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalAveragePooling3D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "GlobalMaxPooling3D",
}
ACTIVATIONS = {"ReLU", "Activation", "LeakyReLU", "PReLU", "Softmax"}
FUSED = {"linear", "relu", "relu6"}  # activations LiteRT fuses into conv/dense/add
FIXED_RANGE = {"softmax", "sigmoid", "tanh", "log_softmax"}  # LiteRT sets their output range itself
# Activations the converter leaves in float between int8 ops (measured with TensorFlow 2.21).
FLOAT_ONLY = {"elu", "selu", "softplus", "softsign", "hard_sigmoid", "mish"}


def supported_layers():
    return sorted(WEIGHTED | PASSTHROUGH | COMPUTING | ACTIVATIONS)


# -- rewriting a model -----------------------------------------------------------------------------


def quantize_model(model):
    """A fake-quantized copy of the functional ``model`` (its weights are not changed).

    Returns ``(qmodel, plan)``; ``plan`` says what was folded and where quantizers sit.
    """
    import keras

    from plugins.deployment.tflite.bridge import run_graph

    rewrite = _Rewrite(model)
    inputs, quantized_inputs = rewrite.inputs()
    outputs = run_graph(rewrite.graph, quantized_inputs, rewrite.call)
    qmodel = keras.Model(inputs if len(inputs) > 1 else inputs[0], outputs, name=f"{model.name}_qat")
    return qmodel, rewrite.plan


def _analyse(graph):
    """``(used_by, folded)`` of a functional graph and the graphs nested in it (inlined by the
    rewrite): each tensor's consumers, and the BatchNormalizations folded into the layer before."""
    from plugins.deployment.tflite.bridge import consumers, functional, is_model, nodes

    graphs, used_by, folded = [graph], {}, {}
    for g in graphs:
        for node in nodes(g):
            if is_model(node.operation):
                graphs.append(functional(node.operation, "native QAT"))
            else:
                _check_supported(node.operation)
        used_by.update(consumers(g))
    for g in graphs:
        folded.update(_folds(g, used_by))
    return used_by, folded


class _Rewrite:
    """One rewrite of a float graph: ``call`` makes each call of it anew, fake-quantized.

    ``made``: ``id(layer) → (its rewritten layer, split activation)`` (shared layers stay shared).
    """

    def __init__(self, model):
        from plugins.deployment.tflite.bridge import functional

        self.classes = custom_objects()
        self.graph = functional(model, "native QAT")
        self.used_by, self.folded = _analyse(self.graph)
        self.folded_bn = {id(bn): conv for conv, bn in self.folded.values()}
        self.plan = {
            "folded": [[conv.name, bn.name] for conv, bn in self.folded.values()],
            "quantizers": [],
            "integer_inputs": [],
        }
        self.made = {}

    def quantize(self, tensor, name):
        self.plan["quantizers"].append(name)
        return self.classes["ActivationQuantizer"](name=name)(tensor)

    def inputs(self):
        """``(new inputs, what the graph gets)``: float inputs are quantized, integer ones not."""
        import keras

        inputs, quantized = [], []
        for tensor in self.graph.inputs:
            layer = tensor._keras_history.operation
            new = keras.Input(batch_shape=tensor.shape, dtype=tensor.dtype, name=layer.name)
            inputs.append(new)
            if "float" in str(tensor.dtype):
                quantized.append(self.quantize(new, f"{new.name}_quant"))
            else:
                self.plan["integer_inputs"].append(new.name)
                quantized.append(new)
        return inputs, quantized

    def call(self, node, args, kwargs):
        """The rewritten call of ``node`` on ``args``, with the quantizers after it."""
        from keras import tree

        from plugins.deployment.tflite.bridge import is_model, run_graph

        layer = node.operation
        if is_model(layer):
            return run_graph(layer, tree.flatten((args, kwargs)), self.call)
        if id(layer) in self.folded_bn:  # computed by the conv it was folded into
            out = args[0]
        else:
            out, split = self._call_rewritten(node, args, kwargs)
            if split is not None:  # a non-fusable activation split out of the layer
                out = split(self.quantize(out, f"{layer.name}_quant"))
                return out if split.activation.__name__ in FIXED_RANGE else self.quantize(out, f"{split.name}_quant")
        kind = type(layer).__name__
        if _needs_quantizer(layer, kind, node.outputs[0], self.used_by, self.folded, self.folded_bn):
            name = (self.folded_bn[id(layer)].name if id(layer) in self.folded_bn else layer.name) + "_quant"
            return self.quantize(out, name)
        return out

    def _call_rewritten(self, node, args, kwargs):
        """``(output, split activation or None)`` of the node's layer rewritten (once per layer)."""
        layer = node.operation
        first = id(layer) not in self.made
        if first:
            fold = self.folded.get(id(layer))
            self.made[id(layer)] = _rewrite(layer, fold, self.classes, node.input_tensors[0].shape)
        new, split = self.made[id(layer)]
        kwargs = {k: v for k, v in kwargs.items() if not (k == "training" and v is False)}
        out = new(*args, **kwargs)
        if first and type(layer).__name__ not in WEIGHTED and layer.weights:  # a copy: built by the call above
            new.set_weights(layer.get_weights())
        return out, split


def _check_supported(layer):
    kind = type(layer).__name__
    if kind in WEIGHTED | PASSTHROUGH | COMPUTING | ACTIVATIONS and type(layer).__module__.startswith("keras."):
        if kind in WEIGHTED and getattr(layer, "quantization_mode", None):
            raise UsageError(
                f"native QAT: layer {layer.name!r} ({kind}) is already quantized "
                f"({layer.quantization_mode}); start from a float model"
            )
        if _activation_name(layer) in FLOAT_ONLY:
            raise UsageError(
                f"native QAT: layer {layer.name!r} ({kind}) uses activation "
                f"{_activation_name(layer)!r}, which LiteRT's int8 converter leaves in float; "
                "use relu, relu6, leaky_relu, gelu, silu, tanh or sigmoid"
            )
        return
    raise UsageError(
        f"native QAT: layer {layer.name!r} ({kind}) is not supported (it would stay float in an int8 "
        f"model); supported layers: {', '.join(supported_layers())}"
    )


def _activation_name(layer):
    activation = getattr(layer, "activation", None)
    return None if activation is None else getattr(activation, "__name__", str(activation))


def _folds(graph, used_by):
    """``id(conv) → (conv, bn)`` for each BatchNormalization that only rescales one conv/dense output."""
    from plugins.deployment.tflite.bridge import nodes

    out = {}
    for node in nodes(graph):
        bn = node.operation
        if type(bn).__name__ != "BatchNormalization" or len(bn._inbound_nodes) != 1:
            continue
        (tensor,) = node.input_tensors
        producer = tensor._keras_history.operation
        if (
            type(producer).__name__ in WEIGHTED - {"Conv2DTranspose"}
            and _activation_name(producer) == "linear"
            and len(producer._inbound_nodes) == 1
            and len(used_by.get(id(tensor), [])) == 1
            and bn.axis in (-1, len(tensor.shape) - 1)
        ):
            out[id(producer)] = (producer, bn)
    return out


def _fuses(node):
    """Whether LiteRT fuses this activation into the conv/dense/add before it."""
    layer = node.operation
    kind = type(layer).__name__
    if kind == "ReLU":
        return layer.negative_slope == 0 and layer.threshold == 0 and layer.max_value in (None, 6.0)
    return kind == "Activation" and _activation_name(layer) in ("relu", "relu6")


def _needs_quantizer(layer, kind, tensor, used_by, folded, folded_bn):
    if kind in PASSTHROUGH:
        return False
    if kind in ACTIVATIONS:
        return not (kind == "Softmax" or _activation_name(layer) in FIXED_RANGE)
    if id(layer) in folded:  # the BN after it carries the output
        return False
    after = used_by.get(id(tensor), [])
    fusable = kind != "Conv2DTranspose" and (
        kind in COMPUTING or id(layer) in folded_bn or _activation_name(layer) == "linear"
    )
    return not (fusable and len(after) == 1 and _fuses(after[0]))


def _rewrite(layer, fold, classes, input_shape):
    """``(new layer, split activation layer or None)`` for one layer of the float model."""
    import keras

    kind = type(layer).__name__
    if kind not in WEIGHTED:  # a copy (its weights are set once it is built)
        new = type(layer).from_config(layer.get_config())
        if kind == "BatchNormalization":  # not foldable: frozen on its moving statistics
            new.trainable = False
        return new, None
    config = layer.get_config()
    activation = _activation_name(layer)
    split = None
    # LiteRT's TRANSPOSE_CONV fuses no activation: its output needs a range of its own.
    if activation not in FUSED or kind == "Conv2DTranspose" and activation != "linear":
        config["activation"] = "linear"
        split = keras.layers.Activation(activation, name=f"{layer.name}_{activation}")
    if kind == "Dense":
        config.pop("lora_rank", None), config.pop("lora_alpha", None)
    # The weights are copied in below: skip drawing random ones (on JAX each new shape compiles).
    config.update(kernel_initializer="zeros", bias_initializer="zeros")
    if kind == "DepthwiseConv2D":
        config.update(depthwise_initializer="zeros")
        config.pop("kernel_initializer")
    kernel = np.asarray(keras.ops.convert_to_numpy(layer.kernel))
    bias = np.asarray(keras.ops.convert_to_numpy(layer.bias)) if layer.use_bias else None
    if fold is not None:
        kernel, bias = _fold(kernel, bias, fold[1], kind)
        config["use_bias"] = True
    new = classes[f"Quant{kind}"].from_config(config)
    new.build(input_shape)
    new.set_weights([kernel] if bias is None else [kernel, bias])
    return new, split


def _fold(kernel, bias, bn, kind):
    import keras

    def value(w):
        return np.asarray(keras.ops.convert_to_numpy(w), dtype="float64")

    variance, mean = value(bn.moving_variance), value(bn.moving_mean)
    gamma = value(bn.gamma) if bn.scale else np.ones_like(mean)
    beta = value(bn.beta) if bn.center else np.zeros_like(mean)
    factor = gamma / np.sqrt(variance + bn.epsilon)
    if kind == "DepthwiseConv2D":  # output channel c*mult + m scales kernel[..., c, m]
        new_kernel = kernel * factor.reshape(kernel.shape[-2:])
    elif kind == "Conv2DTranspose":  # kernel (kh, kw, out, in)
        new_kernel = kernel * factor[:, None]
    else:
        new_kernel = kernel * factor
    bias = np.zeros_like(mean) if bias is None else bias.astype("float64")
    new_bias = (bias - mean) * factor + beta
    return new_kernel.astype(kernel.dtype), new_bias.astype(kernel.dtype)


def calibrate(qmodel, x, batch_size=64):
    """Set every quantizer's range from float activations on ``x`` (mean of per-batch min/max).

    The quantizers pass their inputs through meanwhile, so each sees the float model's activations;
    one compiled probe model returns them all, batch by batch.
    """
    import keras

    quantizers = _quantizers(qmodel)
    for q in quantizers:
        q.calibrating = True
    try:
        inputs = qmodel.inputs[0] if len(qmodel.inputs) == 1 else qmodel.inputs
        probe = keras.Model(inputs, [q.input for q in quantizers])
        lows, highs = [], []
        if len(x) > batch_size:  # whole batches: one compiled probe
            x = x[: len(x) - len(x) % batch_size]
        for start in range(0, len(x), batch_size):
            values = probe.predict_on_batch(x[start : start + batch_size])
            values = values if isinstance(values, (list, tuple)) else [values]
            lows.append([float(np.min(v)) for v in values])
            highs.append([float(np.max(v)) for v in values])
    finally:
        for q in quantizers:
            q.calibrating = False
    found = {}
    for q, low, high in zip(quantizers, np.mean(lows, axis=0), np.mean(highs, axis=0)):
        low, high = min(float(low), 0.0), max(float(high), 0.0)
        high = max(high, low + 1e-6)
        q.range_min.assign(np.float32(low))
        q.range_max.assign(np.float32(high))
        found[q.name] = [low, high]
    return found


def ranges(qmodel):
    """``{quantizer name: [min, max]}`` of a QAT model."""
    import keras

    return {
        q.name: [float(keras.ops.convert_to_numpy(q.range_min)), float(keras.ops.convert_to_numpy(q.range_max))]
        for q in _quantizers(qmodel)
    }


def _quantizers(qmodel):
    return [layer for layer in qmodel._flatten_layers() if type(layer).__name__ == "ActivationQuantizer"]


def load(path, modules=()):
    """A saved QAT model (registers the QAT layers first)."""
    from core import load_model

    custom_objects()
    return load_model(path, modules)


# -- fine-tuning a run ------------------------------------------------------------------------------


def train_qat(
    run_dir, out, epochs=1, learning_rate=1e-4, batch_size=0, seed=0, calibration_samples=CALIBRATION_SAMPLES, verbose=0
):
    """Rewrite run ``run_dir``'s model for QAT, calibrate it, fine-tune it ``epochs`` on the run's
    training split under this process's backend, save it to ``out`` (.keras); return a summary."""
    import time

    import keras

    from core import as_arrays

    started = time.perf_counter()
    run, model, dataset = load_for_finetuning(run_dir, "qat=native")
    keras.utils.set_random_seed(seed)
    qmodel, plan = quantize_model(model)
    x, _ = as_arrays(dataset.train, limit=calibration_samples)
    calibrated = calibrate(qmodel, x)
    fit(qmodel, run, dataset, epochs, learning_rate, batch_size, verbose=verbose, seed=seed, description="QAT")
    save(qmodel, out)
    return {
        "backend": keras.backend.backend(),
        "epochs": epochs,
        "learning_rate": learning_rate,
        "folded": plan["folded"],
        "quantizers": len(plan["quantizers"]),
        "integer_inputs": plan["integer_inputs"],
        "calibrated_ranges": calibrated,
        "ranges": ranges(qmodel),
        "seconds": round(time.perf_counter() - started, 2),
    }
