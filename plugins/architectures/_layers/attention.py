"""Transformer encoder pieces shared by ``transformer`` and ``vit``: a learned position embedding
(Keras 3 has none built in) and pre-norm encoder blocks made of built-in layers."""

import keras
from keras import layers


@keras.saving.register_keras_serializable(package="kerastack")
class PositionEmbedding(layers.Layer):
    """Adds a learned vector to each position of a ``(batch, length, dim)`` sequence.

    The length is fixed by the input shape at build time, so the saved config needs nothing extra;
    on TFLite it is one ADD of a constant.
    """

    def __init__(self, stddev=0.02, **kwargs):
        super().__init__(**kwargs)
        self.stddev = float(stddev)

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[1] is None:
            raise ValueError(f"PositionEmbedding needs (batch, length, dim) with a known length; got {input_shape}")
        self.embeddings = self.add_weight(
            shape=(input_shape[1], input_shape[2]),
            name="embeddings",
            initializer=keras.initializers.RandomNormal(stddev=self.stddev),
        )

    def call(self, x):
        return x + keras.ops.expand_dims(self.embeddings, 0)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev}


def check_heads(arch, dim, heads):
    if heads < 1 or dim % heads:
        raise ValueError(f"{arch} needs dim divisible by heads; got dim={dim}, heads={heads}")


def encoder(x, blocks, heads, mlp_dim, dropout):
    """``blocks`` pre-norm encoder blocks (attention and a GELU feed-forward, each added back to its
    input), then a final LayerNormalization. The width is the last axis of ``x``."""
    dim = x.shape[-1]
    for _ in range(blocks):
        h = layers.LayerNormalization(epsilon=1e-6)(x)
        h = layers.MultiHeadAttention(heads, dim // heads, dropout=dropout)(h, h)
        x = layers.Add()([x, layers.Dropout(dropout)(h)])
        h = layers.LayerNormalization(epsilon=1e-6)(x)
        h = layers.Dense(mlp_dim, activation="gelu")(h)
        h = layers.Dropout(dropout)(h)
        h = layers.Dense(dim)(h)
        x = layers.Add()([x, layers.Dropout(dropout)(h)])
    return layers.LayerNormalization(epsilon=1e-6)(x)


def classify_sequence(inputs, x, spec, blocks, heads, mlp_dim, dropout, name):
    """The model from embedded tokens ``x`` (batch, tokens, dim): learned positions, the encoder,
    average pooling over tokens and the task's head (``_layers.heads``: a softmax named
    ``probabilities`` for classification, the forecast horizon for forecasting)."""
    import keras

    from plugins.architectures._layers.heads import head

    x = PositionEmbedding()(x)
    x = layers.Dropout(dropout)(x)
    x = encoder(x, blocks, heads, mlp_dim, dropout)
    x = layers.GlobalAveragePooling1D()(x)
    x = layers.Dropout(dropout)(x)
    return keras.Model(inputs, head(spec, x), name=name)
