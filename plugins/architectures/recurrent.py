"""``lstm`` and ``gru``: recurrent sequence models on (timesteps, features) series or token ids:
classifiers, forecasters of a series' next values, regressors."""

from core import hookimpl

CELLS = {"lstm": "LSTM", "gru": "GRU"}  # architecture name → keras.layers class


@hookimpl
def register_architectures(register):
    for name, cell in CELLS.items():
        register(
            name,
            builder(name),
            tasks=("classification", "forecasting", "regression"),
            summary=f"stacked (optionally bidirectional) {cell} on series or token ids; softmax or forecast head",
        )


def builder(name):
    """The ``build`` function of architecture ``name``: the same model with its own cell type."""

    def build(spec, units=32, layers=1, bidirectional=False, dropout=0.1, embed_dim=16, frame=1, unroll=True):
        """``layers`` stacked recurrent layers of ``units`` (each direction, if ``bidirectional``);
        the last returns its final state only. Integer inputs with a ``vocab_size`` are token ids,
        embedded in ``embed_dim`` dimensions first (no masking: 0 is an ordinary token). With
        ``frame`` > 1, a series is cut into frames of ``frame`` timesteps, each embedded in
        ``embed_dim`` dimensions (Dense + ReLU): a sequence ``frame`` times shorter, that trains and
        runs faster and learns local shape sooner. ``unroll`` writes the recurrence out step by
        step: LiteRT then runs it with builtin (and int8) kernels at any batch size, where Keras 3's
        loop becomes a WHILE loop that exports at batch 1 in float only. Turn it off for long
        sequences (the graph grows with the steps). The head is the task's (``_layers.heads``):
        class probabilities, or the forecast horizon from the last state."""
        return _build(name, spec, units, layers, bidirectional, dropout, embed_dim, frame, unroll)

    build.__name__ = build.__qualname__ = f"build_{name}"
    return build


def _build(name, spec, units, depth, bidirectional, dropout, embed_dim, frame, unroll):
    import keras

    from plugins.architectures._layers.heads import head, series_input

    tokens = spec.input_dtype.startswith("int") and spec.vocab_size
    if len(spec.input_shape) != (1 if tokens else 2):
        raise ValueError(
            f"{name} needs sequences (timesteps, features) or int token ids (timesteps,) "
            f"with a vocab_size; the dataset gives {spec.input_shape}"
        )
    if frame < 1 or spec.input_shape[0] % frame or (tokens and frame > 1):
        raise ValueError(
            f"{name} needs a series whose timesteps are a multiple of frame={frame} "
            f"(frame=1 for token ids); the dataset gives {spec.input_shape}"
        )
    if tokens:
        inputs = keras.Input(spec.input_shape, dtype=spec.input_dtype, name="tokens")
        x = keras.layers.Embedding(spec.vocab_size, embed_dim, mask_zero=False)(inputs)
    else:
        inputs = keras.Input(spec.input_shape, name="series")
        x = series_input(spec, inputs)
        if frame > 1:
            steps, features = spec.input_shape
            x = keras.layers.Reshape((steps // frame, frame * features))(x)
            x = keras.layers.Dense(embed_dim, activation="relu")(x)
    cell = getattr(keras.layers, CELLS[name])
    for i in range(depth):
        rnn = cell(units, return_sequences=i < depth - 1, unroll=unroll)
        x = keras.layers.Bidirectional(rnn)(x) if bidirectional else rnn(x)
        x = keras.layers.Dropout(dropout)(x)
    return keras.Model(inputs, head(spec, x), name=name)
