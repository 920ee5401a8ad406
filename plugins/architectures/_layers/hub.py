"""Layers that adapt token ids to a KerasHub text backbone inside the model (exportable to LiteRT)."""

import keras


@keras.saving.register_keras_serializable(package="kerastack")
class TokenInputs(keras.layers.Layer):
    """Token ids (0 = padding) → ``(padding_mask, segment_ids)``, both int32: the inputs a BERT-like
    backbone needs besides the ids (int32, not bool: LiteRT's builtin ops take it, as measured)."""

    def call(self, ids):
        from keras import ops

        return ops.cast(ops.not_equal(ids, 0), "int32"), ops.zeros_like(ids, dtype="int32")

    def compute_output_shape(self, input_shape):
        return input_shape, input_shape


@keras.saving.register_keras_serializable(package="kerastack")
class FirstToken(keras.layers.Layer):
    """The first position of a sequence of vectors (the [CLS] token's output)."""

    def call(self, sequence):
        return sequence[:, 0, :]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])
