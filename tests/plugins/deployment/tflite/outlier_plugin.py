"""``outlier``: a small net whose first layer (``stem``) has one huge constant output channel that
the next layer (``mix``) ignores. Float it is a plain net; post-training int8 quantizes ``stem``'s
output with one scale for all channels, spread over [0, ~1000], which crushes the other channels.
(test_checks.py uses it with ``outlier=0``, a plain net, and an ``elu`` layer.)"""

from core import hookimpl


@hookimpl
def register_architectures(register):
    register(
        "outlier",
        build,
        summary="a net with one massive activation channel (int8 collapses)",
        tasks=("classification", "regression"),
    )


def build(spec, outlier=1000.0, activation="relu"):
    """``outlier=0``: a plain net; ``activation``: the ``hidden`` layer's (``elu`` has no int8 kernel:
    an int8 file then holds a ``DEQUANTIZE → ELU → QUANTIZE`` float island)."""
    import keras
    from outlier_layers import IgnoreLastInput, OutlierBias

    inputs = keras.Input(spec.input_shape)
    image = len(spec.input_shape) == 3
    if image:
        x = keras.layers.Conv2D(
            9, 3, padding="same", activation="relu", bias_initializer=OutlierBias(outlier), name="stem"
        )(inputs)
        x = keras.layers.Conv2D(
            16, 3, padding="same", activation="relu", kernel_constraint=IgnoreLastInput(), name="mix"
        )(x)
        x = keras.layers.MaxPooling2D(name="pool")(x)
        x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv")(x)
        x = keras.layers.Flatten(name="flatten")(x)
    else:
        x = keras.layers.Dense(17, activation="relu", bias_initializer=OutlierBias(outlier), name="stem")(inputs)
        x = keras.layers.Dense(32, activation="relu", kernel_constraint=IgnoreLastInput(), name="mix")(x)
    x = keras.layers.Dense(32, activation=activation, name="hidden")(x)
    if spec.task == "regression":
        outputs = keras.layers.Dense(1, name="head")(x)
    else:
        outputs = keras.layers.Dense(spec.num_classes, activation="softmax", name="head")(x)
    return keras.Model(inputs, outputs)
