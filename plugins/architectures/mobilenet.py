"""``mobilenet``: MobileNetV2-style inverted residual blocks for images — the edge default."""

from core import hookimpl


@hookimpl
def register_architectures(register):
    register(
        "mobilenet",
        build,
        summary="MobileNetV2 inverted residuals (expand, depthwise 3x3, linear project), ReLU6",
        tasks=("classification",),
    )


def build(spec, alpha=1.0, expansion=4, filters=(16, 24, 32), blocks=(1, 2, 2), dropout=0.1):
    """A 3×3 conv stem (stride 1: the images here are small), then stage ``i`` with ``blocks[i]``
    inverted residual blocks of ``filters[i] × alpha`` output channels (rounded to a multiple of 8,
    as in MobileNetV2); a stage's first block strides 2 where the feature map is still larger than
    2×2. Each block expands ``expansion``-fold with a 1×1 conv, filters with a 3×3 depthwise conv,
    projects back linearly, and adds its input when the shape allows. The head is a 1×1 conv to 4×
    the last stage's channels, then global average pooling."""
    import keras
    from keras import layers

    if len(spec.input_shape) not in (2, 3):
        raise ValueError(f"mobilenet needs image inputs (H, W[, C]); the dataset gives {spec.input_shape}")
    if len(filters) != len(blocks):
        raise ValueError(
            f"mobilenet needs as many filters as blocks (one of each per stage); got filters={filters}, blocks={blocks}"
        )

    def channels(n):
        return max(8, int(n * alpha + 4) // 8 * 8)

    def conv_bn(x, out, relu6=True):
        x = layers.Conv2D(out, 1, use_bias=False)(x)
        x = layers.BatchNormalization(momentum=0.9)(x)
        return layers.ReLU(max_value=6.0)(x) if relu6 else x

    def inverted_residual(x, out, strides):
        y = conv_bn(x, x.shape[-1] * expansion) if expansion != 1 else x
        y = layers.DepthwiseConv2D(3, strides=strides, padding="same", use_bias=False)(y)
        y = layers.ReLU(max_value=6.0)(layers.BatchNormalization(momentum=0.9)(y))
        y = conv_bn(y, out, relu6=False)
        return layers.Add()([x, y]) if strides == 1 and x.shape[-1] == out else y

    inputs = keras.Input(spec.input_shape, name="image")
    x = inputs if len(spec.input_shape) == 3 else layers.Reshape((*spec.input_shape, 1))(inputs)
    x = layers.Conv2D(channels(filters[0]), 3, padding="same", use_bias=False)(x)
    x = layers.ReLU(max_value=6.0)(layers.BatchNormalization(momentum=0.9)(x))
    for stage, (out, count) in enumerate(zip(filters, blocks)):
        for block in range(count):
            strides = 2 if stage and not block and min(x.shape[1], x.shape[2]) > 2 else 1
            x = inverted_residual(x, channels(out), strides)
    x = conv_bn(x, 4 * channels(filters[-1]))
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(spec.num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="mobilenet")
