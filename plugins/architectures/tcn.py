"""``tcn``: a temporal convolutional network, dilated causal Conv1D blocks with residuals, for
series on the edge (every layer a builtin, int8-ready TFLite op)."""

from core import hookimpl


@hookimpl
def register_architectures(register):
    register(
        "tcn",
        build,
        tasks=("forecasting", "regression", "classification"),
        summary="dilated causal Conv1D residual blocks on (timesteps, features) series; forecasts the horizon",
    )


def build(spec, filters=32, kernel_size=3, levels=4, dropout=0.0):
    """A forecast's series is standardized first (``series_input``); then ``levels`` residual blocks, block i dilated by 2**i: two causal Conv1D of ``filters`` with
    ``kernel_size`` (each a left ZeroPadding1D, then a valid dilated Conv1D: on TFLite a PAD and a
    CONV_2D, no select ops), ReLU and ``dropout``, added to the block's input (a 1×1 Conv1D where
    the widths differ). The last timestep's features, which see ``1 + 2 (kernel_size - 1)
    (2**levels - 1)`` steps back, feed the head: a forecast of the whole horizon at once, a
    regression value or class probabilities."""
    import keras
    from keras import layers

    from plugins.architectures._layers.heads import head, series_input

    if len(spec.input_shape) != 2:
        raise ValueError(f"tcn needs series (timesteps, features); the dataset gives {spec.input_shape}")
    for name, value in (("filters", filters), ("kernel_size", kernel_size), ("levels", levels)):
        if value < 1:
            raise ValueError(f"tcn needs {name} of at least 1; got {name}={value}")
    steps = spec.input_shape[0]
    inputs = keras.Input(spec.input_shape, name="series")
    x = series_input(spec, inputs)
    for level in range(levels):
        dilation = 2**level
        h = x
        for _ in range(2):
            h = layers.ZeroPadding1D(((kernel_size - 1) * dilation, 0))(h)
            h = layers.Conv1D(filters, kernel_size, dilation_rate=dilation, activation="relu")(h)
            if dropout:
                h = layers.Dropout(dropout)(h)
        skip = x if x.shape[-1] == filters else layers.Conv1D(filters, 1)(x)
        x = layers.Add()([skip, h])
    x = layers.Cropping1D((steps - 1, 0))(x)  # the last timestep: a causal model's summary
    x = layers.Flatten()(x)
    return keras.Model(inputs, head(spec, x), name="tcn")
