"""Losses the core compiles with. Registered so that a saved model reloads on any backend."""

import keras


@keras.saving.register_keras_serializable(package="kerastack")
class SparseCrossentropyWithSmoothing(keras.losses.Loss):
    """Cross-entropy from integer labels and probabilities, with label smoothing.

    Keras's SparseCategoricalCrossentropy has no ``label_smoothing``; one-hot targets would make
    every dataset change its labels. Target: ``(1 - s)`` on the true class plus ``s / K`` on all.
    """

    def __init__(self, label_smoothing=0.1, name="sparse_crossentropy_with_smoothing", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        ops = keras.ops
        classes = ops.shape(y_pred)[-1]
        labels = ops.cast(ops.reshape(y_true, ops.shape(y_pred)[:-1]), "int32")  # per sample or per pixel
        onehot = ops.one_hot(labels, classes, dtype=y_pred.dtype)
        target = onehot * (1.0 - self.label_smoothing) + self.label_smoothing / ops.cast(classes, y_pred.dtype)
        log_p = ops.log(ops.clip(y_pred, 1e-7, 1.0))
        return -ops.sum(target * log_p, axis=-1)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}
