"""``transformer``: a Transformer encoder for token ids or (timesteps, features) series: a
classifier, or a forecaster of a series' next values."""

from core import hookimpl


@hookimpl
def register_architectures(register):
    register(
        "transformer",
        build,
        tasks=("classification", "forecasting", "regression"),
        summary="token or series embedding + learned positions, self-attention encoder, pooled softmax or forecast head",
    )


def build(spec, dim=32, heads=2, blocks=2, mlp_dim=64, dropout=0.1):
    """Integer inputs with a ``vocab_size`` are token ids, embedded in ``dim`` dimensions; float
    series (timesteps, features) are projected to ``dim`` with a Dense layer. A learned embedding per
    position follows, then ``blocks`` pre-norm encoder blocks (``heads`` attention heads, a GELU
    feed-forward of ``mlp_dim``) and a global average over positions; a forecast's series is
    standardized first (``series_input``), the head is the task's (``_layers.heads``)."""
    import keras
    from keras import layers

    from plugins.architectures._layers.attention import check_heads, classify_sequence
    from plugins.architectures._layers.heads import series_input

    tokens = spec.input_dtype.startswith("int") and spec.vocab_size
    if len(spec.input_shape) != (1 if tokens else 2):
        raise ValueError(
            f"transformer needs int token ids (timesteps,) with a vocab_size or sequences "
            f"(timesteps, features); the dataset gives {spec.input_shape}"
        )
    check_heads("transformer", dim, heads)
    if tokens:
        inputs = keras.Input(spec.input_shape, dtype=spec.input_dtype, name="tokens")
        x = layers.Embedding(spec.vocab_size, dim)(inputs)
    else:
        inputs = keras.Input(spec.input_shape, name="series")
        x = layers.Dense(dim)(series_input(spec, inputs))
    return classify_sequence(inputs, x, spec, blocks, heads, mlp_dim, dropout, "transformer")
