"""The fake-quantized Keras 3 layers of native QAT (``qat.quantize_model`` puts them in a model).

Each class is registered with Keras as ``kerastack>ClassName`` (``ActivationQuantizer``,
``QuantConv1D``, ``QuantConv2D``, ``QuantDepthwiseConv2D``, ``QuantConv2DTranspose``,
``QuantDense``): saved .keras files name them so, and those names must not change.

The classes are defined on first use (:func:`custom_objects`), so importing this module does not
import keras; call ``custom_objects()`` before loading a saved QAT model by hand.
"""

DECAY = 0.99

_CLASSES = {}


def custom_objects():
    """The QAT layer classes by name, defined and registered with Keras on first call."""
    if not _CLASSES:
        import keras

        register = keras.saving.register_keras_serializable(package="kerastack")
        for define in (_activation_quantizer, _quant_convolutions, _quant_depthwise, _quant_transpose, _quant_dense):
            _CLASSES.update({cls.__name__: register(cls) for cls in define(keras)})
    return dict(_CLASSES)


def quantize_kernel(kernel, per_channel=True):
    """Symmetric narrow-range fake quantization of a kernel, on its last axis or per tensor."""
    from keras import ops, quantizers

    axes = tuple(range(len(kernel.shape) - 1)) if per_channel else None
    bound = ops.stop_gradient(ops.maximum(ops.max(ops.abs(kernel), axis=axes), 1e-12))
    return quantizers.fake_quant_with_min_max_vars(
        kernel, -bound, bound, num_bits=8, narrow_range=True, axis=-1 if per_channel else None
    )


def _bias_and_activation(layer, outputs):
    """What a Keras conv/dense layer does after its product: add the bias, apply the activation."""
    from keras import ops

    if layer.use_bias:
        outputs = ops.add(outputs, layer.bias)
    return layer.activation(outputs) if layer.activation is not None else outputs


def _activation_quantizer(keras):
    from keras import ops, quantizers

    class ActivationQuantizer(keras.layers.Layer):
        """Per-tensor 8-bit fake quantization of activations with moving-average min/max.

        ``decay`` weighs the old range on each training batch. While ``calibrating`` (set by
        ``qat.calibrate``, never saved), it passes its input through unchanged.
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

    return [ActivationQuantizer]


def _quant_convolutions(keras):
    class QuantConv1D(keras.layers.Conv1D):
        """Conv1D with per-channel fake-quantized kernels."""

        def convolution_op(self, inputs, kernel):
            return super().convolution_op(inputs, quantize_kernel(kernel))

    class QuantConv2D(keras.layers.Conv2D):
        """Conv2D with per-channel fake-quantized kernels."""

        def convolution_op(self, inputs, kernel):
            return super().convolution_op(inputs, quantize_kernel(kernel))

    return [QuantConv1D, QuantConv2D]


def _quant_depthwise(keras):
    from keras import ops

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
            return _bias_and_activation(self, outputs)

    return [QuantDepthwiseConv2D]


def _quant_transpose(keras):
    from keras import ops

    class QuantConv2DTranspose(keras.layers.Conv2DTranspose):
        """Conv2DTranspose with a per-tensor fake-quantized kernel (the converter does not take
        per-channel ranges on its output-channel axis, -2)."""

        def call(self, inputs):
            outputs = ops.conv_transpose(
                inputs,
                quantize_kernel(self.kernel, per_channel=False),
                strides=list(self.strides),
                padding=self.padding,
                output_padding=self.output_padding,
                dilation_rate=self.dilation_rate,
                data_format=self.data_format,
            )
            return _bias_and_activation(self, outputs)

    return [QuantConv2DTranspose]


def _quant_dense(keras):
    from keras import ops

    class QuantDense(keras.layers.Dense):
        """Dense with a per-tensor fake-quantized kernel."""

        def call(self, inputs, training=None):
            return _bias_and_activation(self, ops.matmul(inputs, quantize_kernel(self.kernel, per_channel=False)))

    return [QuantDense]
