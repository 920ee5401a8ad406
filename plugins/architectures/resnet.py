"""``resnet``: a small residual network for images (Conv-BN-ReLU blocks with skip connections)."""

from core import hookimpl


@hookimpl
def register_architectures(register):
    register(
        "resnet",
        build,
        summary="residual Conv-BN-ReLU blocks with projection shortcuts, softmax head",
        tasks=("classification",),
    )


def build(spec, width=16, depth=1, stages=3, dropout=0.1):
    """``stages`` stages of ``depth`` residual blocks; filters start at ``width`` and double each
    stage. A stage after the first halves the feature map where it is still larger than 2×2. The
    shortcut is the identity, or where the shape changes a 1×1 conv + BN, after 2×2 average pooling
    when the block strides (as in ResNet-D: a strided 1×1 conv would ignore 3/4 of its input, and it
    crashes TensorFlow's oneDNN CPU kernels in training on this project's machines)."""
    import keras
    from keras import layers

    if len(spec.input_shape) not in (2, 3):
        raise ValueError(f"resnet needs image inputs (H, W[, C]); the dataset gives {spec.input_shape}")

    def conv_bn(x, filters, kernel, strides=1):
        x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False)(x)
        return layers.BatchNormalization(momentum=0.9)(x)

    inputs = keras.Input(spec.input_shape, name="image")
    x = inputs if len(spec.input_shape) == 3 else layers.Reshape((*spec.input_shape, 1))(inputs)
    x = layers.ReLU()(conv_bn(x, width, 3))
    for stage in range(stages):
        filters = width * 2**stage
        for block in range(depth):
            strides = 2 if stage and not block and min(x.shape[1], x.shape[2]) > 2 else 1
            shortcut = x
            if strides != 1:
                shortcut = layers.AveragePooling2D(strides, padding="same")(shortcut)
            if strides != 1 or x.shape[-1] != filters:
                shortcut = conv_bn(shortcut, filters, 1)
            y = layers.ReLU()(conv_bn(x, filters, 3, strides))
            y = conv_bn(y, filters, 3)
            x = layers.ReLU()(layers.Add()([shortcut, y]))
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(spec.num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="resnet")
