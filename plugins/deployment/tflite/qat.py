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

The layer classes are defined on first use (``custom_objects()``), so importing this module does
not import keras; call ``custom_objects()`` before loading a saved QAT model by hand.
"""

import logging
from pathlib import Path

import numpy as np

from core import KerastackError, UsageError

DECAY = 0.99
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


# -- the layers ------------------------------------------------------------------------------------

_CLASSES = {}


def custom_objects():
    """The QAT layer classes, defined and registered with Keras on first call."""
    if not _CLASSES:
        _define()
    return dict(_CLASSES)


def _define():
    import keras
    from keras import ops, quantizers

    register = keras.saving.register_keras_serializable(package="kerastack")

    def quantize_kernel(kernel, per_channel=True):
        """Symmetric narrow-range fake quantization of a kernel, on its last axis or per tensor."""
        axes = tuple(range(len(kernel.shape) - 1)) if per_channel else None
        bound = ops.stop_gradient(ops.maximum(ops.max(ops.abs(kernel), axis=axes), 1e-12))
        return quantizers.fake_quant_with_min_max_vars(
            kernel, -bound, bound, num_bits=8, narrow_range=True, axis=-1 if per_channel else None
        )

    @register
    class ActivationQuantizer(keras.layers.Layer):
        """Per-tensor 8-bit fake quantization of activations with moving-average min/max.

        ``decay`` weighs the old range on each training batch. While ``calibrating`` (set by
        :func:`calibrate`, never saved), it passes its input through unchanged.
        """

        def __init__(self, decay=DECAY, **kwargs):
            super().__init__(**kwargs)
            self.decay = float(decay)
            self.calibrating = False

        def build(self, input_shape):
            self.range_min = self.add_weight(shape=(), initializer="zeros", trainable=False, name="min")
            self.range_max = self.add_weight(
                shape=(), initializer=keras.initializers.Constant(6.0), trainable=False, name="max"
            )

        def call(self, x, training=None):
            if self.calibrating:
                return x
            if training:
                low = ops.minimum(ops.min(ops.stop_gradient(x)), 0.0)
                high = ops.maximum(ops.max(ops.stop_gradient(x)), 0.0)
                self.range_min.assign(self.decay * self.range_min + (1 - self.decay) * low)
                self.range_max.assign(self.decay * self.range_max + (1 - self.decay) * high)
            return quantizers.fake_quant_with_min_max_vars(x, self.range_min, self.range_max, num_bits=8)

        def compute_output_shape(self, input_shape):
            return input_shape

        def get_config(self):
            return {**super().get_config(), "decay": self.decay}

    @register
    class QuantConv1D(keras.layers.Conv1D):
        """Conv1D with per-channel fake-quantized kernels."""

        def convolution_op(self, inputs, kernel):
            return super().convolution_op(inputs, quantize_kernel(kernel))

    @register
    class QuantConv2D(keras.layers.Conv2D):
        """Conv2D with per-channel fake-quantized kernels."""

        def convolution_op(self, inputs, kernel):
            return super().convolution_op(inputs, quantize_kernel(kernel))

    @register
    class QuantDepthwiseConv2D(keras.layers.DepthwiseConv2D):
        """DepthwiseConv2D with per-channel fake-quantized kernels.

        The kernel ``(kh, kw, in, mult)`` is quantized as ``(kh, kw, 1, in*mult)`` on its last axis:
        LiteRT's channel order, and Keras's JAX/torch fake quant mis-broadcasts other axes.
        """

        def call(self, inputs):
            kh, kw, channels, mult = self.kernel.shape
            kernel = ops.reshape(
                quantize_kernel(ops.reshape(self.kernel, (kh, kw, 1, channels * mult))), (kh, kw, channels, mult)
            )
            outputs = ops.depthwise_conv(
                inputs,
                kernel,
                strides=self.strides,
                padding=self.padding,
                dilation_rate=self.dilation_rate,
                data_format=self.data_format,
            )
            if self.use_bias:
                outputs = ops.add(outputs, self.bias)
            return self.activation(outputs) if self.activation is not None else outputs

    @register
    class QuantConv2DTranspose(keras.layers.Conv2DTranspose):
        """Conv2DTranspose with a per-tensor fake-quantized kernel (the converter does not take
        per-channel ranges on its output-channel axis, -2)."""

        def call(self, inputs):
            kernel = quantize_kernel(self.kernel, per_channel=False)
            outputs = ops.conv_transpose(
                inputs,
                kernel,
                strides=list(self.strides),
                padding=self.padding,
                output_padding=self.output_padding,
                dilation_rate=self.dilation_rate,
                data_format=self.data_format,
            )
            if self.use_bias:
                outputs = ops.add(outputs, self.bias)
            return self.activation(outputs) if self.activation is not None else outputs

    @register
    class QuantDense(keras.layers.Dense):
        """Dense with a per-tensor fake-quantized kernel."""

        def call(self, inputs, training=None):
            x = ops.matmul(inputs, quantize_kernel(self.kernel, per_channel=False))
            if self.bias is not None:
                x = ops.add(x, self.bias)
            return self.activation(x) if self.activation is not None else x

    _CLASSES.update(
        {
            c.__name__: c
            for c in (
                ActivationQuantizer,
                QuantConv1D,
                QuantConv2D,
                QuantDepthwiseConv2D,
                QuantConv2DTranspose,
                QuantDense,
            )
        }
    )


# -- rewriting a model -----------------------------------------------------------------------------


def quantize_model(model):
    """A fake-quantized copy of the functional ``model`` (its weights are not changed).

    Returns ``(qmodel, plan)``; ``plan`` says what was folded and where quantizers sit.
    """
    import keras
    from keras import tree

    from plugins.deployment.tflite.bridge import consumers, functional, is_model, nodes, run_graph

    classes = custom_objects()
    graph = functional(model, "native QAT")
    # Nested functional models (an autoencoder's encoder and decoder) are inlined: analyse them all.
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
    folded_bn = {id(bn): conv for conv, bn in folded.values()}
    plan = {"folded": [[conv.name, bn.name] for conv, bn in folded.values()], "quantizers": [], "integer_inputs": []}

    def quantize(tensor, name):
        plan["quantizers"].append(name)
        return classes["ActivationQuantizer"](name=name)(tensor)

    inputs = []
    for tensor in graph.inputs:
        layer = tensor._keras_history.operation
        new = keras.Input(batch_shape=tensor.shape, dtype=tensor.dtype, name=layer.name)
        inputs.append(new)
    quantized_inputs = []
    for new, tensor in zip(inputs, graph.inputs):
        if "float" in str(tensor.dtype):
            quantized_inputs.append(quantize(new, f"{new.name}_quant"))
        else:
            plan["integer_inputs"].append(new.name)
            quantized_inputs.append(new)

    made = {}  # id(layer) → its rewritten layer (shared layers stay shared)

    def call(node, args, kwargs):
        layer = node.operation
        kind = type(layer).__name__
        if is_model(layer):
            return run_graph(layer, tree.flatten((args, kwargs)), call)
        if id(layer) in folded_bn:  # computed by the conv it was folded into
            out = args[0]
            source = node
        else:
            first = id(layer) not in made
            if first:
                made[id(layer)] = _rewrite(layer, folded.get(id(layer)), classes, node.input_tensors[0].shape)
            new, split = made[id(layer)]
            kwargs = {k: v for k, v in kwargs.items() if not (k == "training" and v is False)}
            out = new(*args, **kwargs)
            if first and kind not in WEIGHTED and layer.weights:  # a copy: built by the call above
                new.set_weights(layer.get_weights())
            source = node
            if split is not None:  # a non-fusable activation split out of the layer
                out = quantize(out, f"{layer.name}_quant")
                out = split(out)
                return out if split.activation.__name__ in FIXED_RANGE else quantize(out, f"{split.name}_quant")
        tensor = source.outputs[0]
        if _needs_quantizer(layer, kind, tensor, used_by, folded, folded_bn):
            name = (folded_bn[id(layer)].name if id(layer) in folded_bn else layer.name) + "_quant"
            return quantize(out, name)
        return out

    outputs = run_graph(graph, quantized_inputs, call)
    qmodel = keras.Model(inputs if len(inputs) > 1 else inputs[0], outputs, name=f"{model.name}_qat")
    return qmodel, plan


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

    quantizers = [layer for layer in qmodel._flatten_layers() if type(layer).__name__ == "ActivationQuantizer"]
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
        layer.name: [
            float(keras.ops.convert_to_numpy(layer.range_min)),
            float(keras.ops.convert_to_numpy(layer.range_max)),
        ]
        for layer in qmodel._flatten_layers()
        if type(layer).__name__ == "ActivationQuantizer"
    }


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

    from core import as_arrays, atomic_path

    started = time.perf_counter()
    run, model, dataset = load_for_finetuning(run_dir, "qat=native")
    keras.utils.set_random_seed(seed)
    qmodel, plan = quantize_model(model)
    x, _ = as_arrays(dataset.train, limit=calibration_samples)
    calibrated = calibrate(qmodel, x)
    fit(qmodel, run, dataset, epochs, learning_rate, batch_size, verbose=verbose, seed=seed)
    with atomic_path(Path(out)) as tmp:
        qmodel.save(tmp)
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


def load_for_finetuning(run_dir, what):
    """``(run, model, dataset)`` of a run, loaded in this process's backend (the model uncompiled:
    fine-tuning compiles it afresh)."""
    import importlib

    import keras

    from core import get_plugin_host, inference_model, load_dataset, load_run

    run = load_run(run_dir)
    dataset = load_dataset(run, get_plugin_host(run.record.get("plugins", [])))
    for module in run.record.get("custom_modules", ()):
        try:
            importlib.import_module(module)
        except Exception as exc:
            raise KerastackError(
                f"{what}: cannot import {module!r}, which defines layers of the run's "
                f"model: {type(exc).__name__}: {exc}"
            ) from exc
    model = (
        _load_weights_only(run.model_path)
        if keras.backend.backend() == "jax"
        else keras.saving.load_model(run.model_path, compile=False, safe_mode=True)
    )
    if inference_model(model) is not model:
        raise UsageError(
            f"{what}: the run deploys a part of its {type(model).__name__} model "
            "(inference_model()); fine-tuning needs a model that is deployed whole"
        )
    return run, model, dataset


_RANDOM_INITIALIZERS = {
    "GlorotUniform",
    "GlorotNormal",
    "HeUniform",
    "HeNormal",
    "LecunUniform",
    "LecunNormal",
    "RandomUniform",
    "RandomNormal",
    "TruncatedNormal",
    "VarianceScaling",
    "Orthogonal",
}


def _load_weights_only(path):
    """Load a .keras model without drawing random initial weights that its saved ones replace.

    Under JAX each random draw of a new shape compiles (about a second each on a small CPU); the
    model is rebuilt from its config with zero initializers, then its weights are loaded. Its
    config then says "Zeros" where it said e.g. "GlorotUniform"; its weights are the run's.
    """
    import json
    import zipfile

    import keras

    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
    config.pop("compile_config", None)

    def zeros(obj):
        if isinstance(obj, dict):
            return {
                k: (
                    {"module": "keras.initializers", "class_name": "Zeros", "config": {}, "registered_name": None}
                    if k.endswith("_initializer")
                    and isinstance(v, dict)
                    and v.get("class_name") in _RANDOM_INITIALIZERS
                    else zeros(v)
                )
                for k, v in obj.items()
            }
        if isinstance(obj, list):
            return [zeros(v) for v in obj]
        return obj

    model = keras.saving.deserialize_keras_object(zeros(config), safe_mode=True)
    model.load_weights(path)
    return model


def _loss(run):
    task = run.record.get("spec", {}).get("task")
    if task == "classification":
        return "sparse_categorical_crossentropy", ["accuracy"]
    if task in ("regression", "reconstruction"):
        return "mse", ["mae"]
    raise UsageError(
        f"fine-tuning supports classification, regression and reconstruction runs; this run's task is {task!r}"
    )


def fit(model, run, dataset, epochs, learning_rate, batch_size=0, callbacks=(), verbose=0, keras_module=None, seed=0):
    """Compile ``model`` for the run's task with Adam(``learning_rate``) and fit the training split.

    ``keras_module``: the Keras the model is made of (``tf_keras`` for tfmot models; default Keras 3).
    """
    from core import is_pair, targets_for

    if keras_module is None:
        import keras as keras_module
    keras = keras_module

    task = run.record.get("spec", {}).get("task")
    loss, metrics = _loss(run)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss, metrics=metrics)
    train = targets_for(task, dataset.train)
    batch_size = batch_size or run.record.get("training", {}).get("batch_size") or 32
    # No validation data: one fewer function to compile (seconds under JAX); the exporter evaluates
    # the result on the test split.
    common = dict(epochs=epochs, callbacks=list(callbacks), verbose=verbose)
    if is_pair(train):
        x, y = _full_batches(train, batch_size, seed)
        return model.fit(x, y, batch_size=batch_size, shuffle=True, **common)
    return model.fit(train, **common)


def _full_batches(split, batch_size, seed):
    """A seeded random subset of whole batches: a last, smaller batch would compile the training
    step a second time (about as long as the whole fine-tuning of a small model under JAX)."""
    x, y = split
    n = len(x) - len(x) % batch_size if len(x) >= batch_size else len(x)
    chosen = np.sort(np.random.default_rng(seed).permutation(len(x))[:n])
    return x[chosen], (None if y is None else y[chosen])


def evaluate(model, dataset, task):
    """``{"split", "accuracy"|"mae"|"mse"}`` of ``model`` on the dataset's evaluation split."""
    from core import as_arrays

    name, split = dataset.evaluation_split()
    x, y = as_arrays(split)
    # Each model's predict traces anew; TensorFlow warns about "retracing" after five of them.
    tf_logger = logging.getLogger("tensorflow")
    level = tf_logger.level
    tf_logger.setLevel(logging.ERROR)
    try:
        pred = np.asarray(model.predict(x, batch_size=min(len(x), 1024), verbose=0), dtype="float32")
    finally:
        tf_logger.setLevel(level)
    out = {"split": name}
    if task == "classification" and y is not None:
        out["accuracy"] = float(np.mean(pred.argmax(-1) == np.asarray(y).reshape(-1)))
    elif task == "regression" and y is not None:
        out["mae"] = float(np.mean(np.abs(pred.reshape(len(y), -1) - np.asarray(y, "float32").reshape(len(y), -1))))
    elif task == "reconstruction":
        out["mse"] = float(np.mean((pred.reshape(x.shape) - x) ** 2))
    return out
