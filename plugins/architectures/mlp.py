"""``mlp``: a multilayer perceptron for tabular data (or anything, flattened)."""

from core import hookimpl


@hookimpl
def register_architectures(register):
    register(
        "mlp",
        build,
        summary="Dense+ReLU layers with dropout; flattens any input",
        tasks=("classification", "regression"),
    )


def build(spec, units=(128, 64), dropout=0.1, batch_norm=False):
    import keras
    from keras import layers

    inputs = keras.Input(spec.input_shape, name="features")
    x = layers.Flatten()(inputs) if len(spec.input_shape) > 1 else inputs
    for width in units:
        x = layers.Dense(width, use_bias=not batch_norm)(x)
        if batch_norm:
            x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        if dropout:
            x = layers.Dropout(dropout)(x)
    if spec.task == "classification":
        outputs = layers.Dense(spec.num_classes, activation="softmax", name="probabilities")(x)
    else:
        outputs = layers.Dense(1, name="prediction")(x)
    return keras.Model(inputs, outputs, name="mlp")
