"""``unet``: U-Net for semantic segmentation, a class per pixel (Ronneberger et al., 2015), in
``keras.layers``: an encoder of conv blocks and 2x2 max-pooling, a decoder of 2x2 transposed convs
that doubles back, each level joined to the encoder's of the same size (skip connections)."""

from core import hookimpl


@hookimpl
def register_architectures(register):
    register(
        "unet",
        build,
        summary="U-Net encoder-decoder with skip connections, a softmax over the classes per pixel",
        tasks=("segmentation",),
    )


def build(spec, filters=8, depth=2, dropout=0.0, batchnorm=True):
    """Output (H, W, num_classes) softmax for inputs (H, W[, C]).

    ``depth`` halvings, ``filters`` doubling at each (8 → 16 → 32 at the bottom for the defaults);
    ``dropout`` before the bottom block's second conv; ``batchnorm`` after every conv (before the
    ReLU). H and W must be divisible by 2**depth so that the decoder meets the encoder's sizes."""
    import keras
    from keras import layers

    height, width = check_input(spec, depth)
    inputs = keras.Input(spec.input_shape, name="image")
    x = inputs if len(spec.input_shape) == 3 else layers.Reshape((height, width, 1))(inputs)
    skips = []
    for level in range(depth):
        x = block(layers, x, filters * 2**level, batchnorm)
        skips.append(x)
        x = layers.MaxPooling2D(2)(x)
    x = block(layers, x, filters * 2**depth, batchnorm, dropout)
    for level in reversed(range(depth)):
        x = layers.Conv2DTranspose(filters * 2**level, 2, strides=2, padding="same")(x)
        x = layers.Concatenate()([skips[level], x])
        x = block(layers, x, filters * 2**level, batchnorm)
    outputs = layers.Conv2D(spec.num_classes, 1, activation="softmax", name="probabilities")(x)
    model = keras.Model(inputs, outputs, name="unet")
    return model


def block(layers, x, filters, batchnorm, dropout=0.0):
    """Two 3x3 convs (+ BatchNorm) + ReLU; ``dropout`` between them."""
    for i in range(2):
        if i == 1 and dropout:
            x = layers.Dropout(dropout)(x)
        x = layers.Conv2D(filters, 3, padding="same", use_bias=not batchnorm)(x)
        if batchnorm:
            x = layers.BatchNormalization(momentum=0.9)(x)
        x = layers.ReLU()(x)
    return x


def check_input(spec, depth):
    """``(H, W)`` of image inputs divisible by ``2**depth``, with classes to segment; a ValueError
    saying what to change otherwise (the core reports it as the architecture's one-line error)."""
    shape = spec.input_shape
    if len(shape) not in (2, 3):
        raise ValueError(f"unet needs image inputs (H, W[, C]); the dataset gives {shape}")
    if depth < 1:
        raise ValueError(f"unet needs depth >= 1, got {depth}")
    if not spec.num_classes or spec.num_classes < 2:
        raise ValueError(f"unet needs at least 2 classes to segment; the dataset gives {spec.num_classes}")
    height, width = shape[0], shape[1]
    step = 2**depth
    if height % step or width % step:
        size = -(-max(height, width) // step) * step
        raise ValueError(
            f"unet with depth={depth} needs height and width divisible by {step} (2**depth); the images "
            f"are {height}x{width}: resize them (e.g. --data-opt size={size}) or lower --hp depth"
        )
    return height, width
