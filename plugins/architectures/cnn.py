"""``cnn``: a small convolutional classifier for images (Conv2D, BatchNorm, ReLU, pooling, Dropout)."""

from core import hookimpl


@hookimpl
def register_architectures(register):
    register(
        "cnn", build, summary="Conv2D+BatchNorm+ReLU blocks, pooling, dropout, softmax head", tasks=("classification",)
    )


def build(spec, filters=16, blocks=2, dense=64, dropout=0.25):
    """``blocks`` conv blocks with ``filters`` doubling each block; 2×2 max-pooling where the
    feature map is still larger than 2×2 (an 8×8 input keeps some spatial extent)."""
    import keras
    from keras import layers

    if len(spec.input_shape) not in (2, 3):
        raise ValueError(f"cnn needs image inputs (H, W[, C]); the dataset gives {spec.input_shape}")
    inputs = keras.Input(spec.input_shape, name="image")
    x = inputs if len(spec.input_shape) == 3 else layers.Reshape((*spec.input_shape, 1))(inputs)
    for i in range(blocks):
        for _ in range(2):
            x = layers.Conv2D(filters * 2**i, 3, padding="same", use_bias=False)(x)
            x = layers.BatchNormalization(momentum=0.9)(x)
            x = layers.ReLU()(x)
        if min(x.shape[1], x.shape[2]) > 2:
            x = layers.MaxPooling2D(2)(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    x = layers.Dense(dense, activation="relu")(x)
    outputs = layers.Dense(spec.num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="cnn")
