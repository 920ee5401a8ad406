"""Custom objects of the outlier test architecture (a module of its own: a .keras file that uses
them imports it by name when it loads)."""

import keras
import numpy as np


@keras.saving.register_keras_serializable(package="outlier_test")
class OutlierBias(keras.initializers.Initializer):
    """Zero biases but for the last unit, which starts at ``value``: a "massive activation"."""

    def __init__(self, value=1000.0):
        self.value = value

    def __call__(self, shape, dtype=None):
        bias = np.zeros(shape, "float32")
        bias[-1] = self.value
        return keras.ops.convert_to_tensor(bias, dtype=dtype)

    def get_config(self):
        return {"value": self.value}


@keras.saving.register_keras_serializable(package="outlier_test")
class IgnoreLastInput(keras.constraints.Constraint):
    """Keeps the kernel's weights from the last input channel at zero: the layer ignores it."""

    def __call__(self, w):
        mask = np.ones(w.shape, "float32")
        mask[..., -1, :] = 0.0
        return w * keras.ops.convert_to_tensor(mask, dtype=w.dtype)
