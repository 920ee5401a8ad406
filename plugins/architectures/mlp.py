"""``mlp``: a multilayer perceptron for tabular data (or anything, flattened)."""

from core import hookimpl


@hookimpl
def register_architectures(register):
    register(
        "mlp",
        build,
        summary="Dense+ReLU layers with dropout; flattens any input (a forecast's window too)",
        tasks=("classification", "regression", "forecasting"),
    )


def build(spec, units=(128, 64), dropout=0.1, batch_norm=False):
    """The input flattened (a forecast's window of (timesteps, features) too, standardized first:
    ``series_input``), ``units`` Dense layers with ReLU (BatchNorm before it with ``batch_norm``),
    dropout, and the task's head: class probabilities, the target value(s), the horizon."""
    import keras
    from keras import layers

    from plugins.architectures._layers.heads import head, series_input

    inputs = keras.Input(spec.input_shape, name="features")
    x = series_input(spec, inputs)
    x = layers.Flatten()(x) if len(spec.input_shape) > 1 else x
    for width in units:
        x = layers.Dense(width, use_bias=not batch_norm)(x)
        if batch_norm:
            x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        if dropout:
            x = layers.Dropout(dropout)(x)
    return keras.Model(inputs, head(spec, x), name="mlp")
