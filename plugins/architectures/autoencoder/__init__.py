"""``autoencoder`` and ``vae``: learn to reconstruct their inputs; the reconstruction error is an
anomaly score.

Both train on any dataset's inputs, labels unused (the core fits ``(x, x)`` for the task
"reconstruction"). Images ``(H, W, C)`` pass a conv encoder (stride-2 Conv2D while H and W are even,
at most ``levels`` times) into a ``latent``-sized bottleneck and come back through Conv2DTranspose;
other inputs (tabular rows, series) pass Dense layers. ``vae`` encodes to ``z_mean``/``z_log_var``,
samples z during training and adds the KL divergence to its loss.

Anomaly score: the mean squared reconstruction error of each sample, ::

    m = core.runs.inference_model(run.model)   # the autoencoder; for vae x → decoder(z_mean)
    score = ((x - m.predict(x)) ** 2).mean(axis=tuple(range(1, x.ndim)))

Inputs unlike the training data reconstruct worse and score higher; take a threshold from the
scores of validation data (e.g. their 99th percentile). The deployed (TFLite) model is that same
``m``: one input of the data's shape, its reconstruction out.

``output="auto"`` ends images in a sigmoid (kerastack's image datasets lie in [0, 1]; the vae then
uses a Bernoulli likelihood, i.e. summed binary cross-entropy) and everything else linearly (summed
squared error). Set ``output=linear`` for images outside [0, 1].

The ``vae``'s Keras class (``VAE``) is in ``layers``, imported by ``build_vae`` and, for a saved model,
before it loads: importing this package stays light.
"""

from core import hookimpl

OUTPUTS = ("auto", "sigmoid", "linear")


@hookimpl
def register_architectures(register):
    register(
        "autoencoder",
        build_autoencoder,
        tasks=("reconstruction",),
        summary="conv (images) or Dense encoder → latent bottleneck → decoder; anomaly score = reconstruction error",
    )
    register(
        "vae",
        build_vae,
        tasks=("reconstruction",),
        summary="variational autoencoder: z_mean/z_log_var, reparameterized sample, KL + reconstruction",
    )


def build_autoencoder(spec, latent=16, filters=16, levels=2, units=64, output="auto"):
    """Encoder → ``latent`` units → decoder, as one functional model whose two parts are the layers
    ``encoder`` and ``decoder``. Uncompiled: the core compiles reconstruction with mse."""
    import keras

    activation = _output_activation(spec, output, "autoencoder")
    encoder = _encoder(spec, (latent,), filters, levels, units, "encoder")
    decoder = _decoder(spec, latent, filters, levels, units, activation)
    inputs = keras.Input(spec.input_shape, name="input")
    return keras.Model(inputs, decoder(encoder(inputs)), name="autoencoder")


def build_vae(spec, latent=8, filters=16, levels=2, units=64, beta=1.0, output="auto", learning_rate=1e-3):
    """The autoencoder's encoder with two heads (``z_mean``, ``z_log_var``) and its decoder, in a
    :class:`VAE` compiled with Adam; ``beta`` weighs the KL term. Logs ``reconstruction_loss``,
    ``kl_loss`` and ``mse`` (of the reconstruction)."""
    import keras

    from plugins.architectures.autoencoder.layers import VAE

    activation = _output_activation(spec, output, "vae")
    encoder = _encoder(spec, (latent, latent), filters, levels, units, "encoder")
    decoder = _decoder(spec, latent, filters, levels, units, activation)
    model = VAE(
        encoder, decoder, beta=beta, likelihood="bernoulli" if activation == "sigmoid" else "gaussian", name="vae"
    )
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), metrics=["mse"])
    return model


def _output_activation(spec, output, arch):
    if output not in OUTPUTS:
        raise ValueError(f"{arch}: output must be one of {', '.join(OUTPUTS)}; got {output!r}")
    if not spec.input_dtype.startswith("float"):
        raise ValueError(
            f"{arch} reconstructs float inputs; the dataset gives {spec.input_dtype} "
            f"(token ids?) of shape {spec.input_shape}"
        )
    if output == "auto":
        return "sigmoid" if _is_image(spec) else "linear"
    return output


def _is_image(spec):
    return len(spec.input_shape) == 3


def _encoder(spec, heads, filters, levels, units, name):
    """Input → features → one Dense head per entry of ``heads`` (its width)."""
    import keras
    from keras import layers

    from plugins.architectures._layers.parts import downsamplings

    inputs = keras.Input(spec.input_shape, name="input")
    x = inputs
    if _is_image(spec):
        n = downsamplings(spec.input_shape, levels)
        for i in range(n):
            x = layers.Conv2D(filters * 2**i, 3, strides=2, padding="same", activation="relu")(x)
        if n == 0:
            x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
    x = layers.Flatten()(x) if len(x.shape) > 2 else x
    x = layers.Dense(units, activation="relu")(x)
    names = ["latent"] if len(heads) == 1 else ["z_mean", "z_log_var"]
    outputs = [layers.Dense(width, name=n)(x) for width, n in zip(heads, names)]
    return keras.Model(inputs, outputs[0] if len(outputs) == 1 else outputs, name=name)


def _decoder(spec, latent, filters, levels, units, activation):
    import keras
    from keras import layers

    from plugins.architectures._layers.parts import downsamplings

    z = keras.Input((latent,), name="latent")
    x = layers.Dense(units, activation="relu")(z)
    if _is_image(spec):
        h, w, channels = spec.input_shape
        n = downsamplings(spec.input_shape, levels)
        width = filters * 2 ** max(n - 1, 0)
        x = layers.Dense((h // 2**n) * (w // 2**n) * width, activation="relu")(x)
        x = layers.Reshape((h // 2**n, w // 2**n, width))(x)
        for i in reversed(range(n)):
            x = layers.Conv2DTranspose(filters * 2**i, 3, strides=2, padding="same", activation="relu")(x)
        out = layers.Conv2D(channels, 3, padding="same", activation=activation, name="reconstruction")(x)
    else:
        size = 1
        for d in spec.input_shape:
            size *= d
        x = layers.Dense(size, activation=activation, name="reconstruction")(x)
        out = layers.Reshape(spec.input_shape)(x) if len(spec.input_shape) > 1 else x
    return keras.Model(z, out, name="decoder")
