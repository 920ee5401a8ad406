"""``PixelPreprocessing``: a pretrained backbone's input preprocessing, baked into the model.

Datasets deliver float images in ``[0, pixel_max]`` (``image_folder``: ``[0, 1]``) with 1 or 3
channels; ImageNet backbones expect 3 channels in their library's own range. One fixed 1×1
convolution (a builtin CONV_2D in LiteRT, no weights to train or save) maps one to the other: grey
to RGB, ``[0, pixel_max]`` to ``[0, 255]``, RGB to BGR and the per-channel affine map where the
library asks for it. ``record()`` says what it does, for model.json.
"""

import keras
import numpy as np


@keras.saving.register_keras_serializable(package="kerastack")
class PixelPreprocessing(keras.layers.Layer):
    """``y[..., c] = x[..., source(c)] * 255 / pixel_max * scale[c] + offset[c]``, 3 output channels
    (``source(c)`` is channel 0 for grey inputs, ``2 - c`` with ``bgr``). ``library`` names the
    preprocessing it reproduces and ``inside`` the steps the backbone itself still does."""

    def __init__(
        self,
        pixel_max=1.0,
        scale=(1.0, 1.0, 1.0),
        offset=(0.0, 0.0, 0.0),
        bgr=False,
        library="",
        inside="",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.pixel_max = float(pixel_max)
        self.scale = [float(s) for s in scale]
        self.offset = [float(o) for o in offset]
        self.bgr = bool(bgr)
        self.library = library
        self.inside = inside

    def kernel(self, channels):
        """The (1, 1, channels, 3) matrix of the map (without its offset)."""
        kernel = np.zeros((1, 1, channels, 3), "float32")
        for out in range(3):
            source = 0 if channels == 1 else (2 - out if self.bgr else out)
            kernel[0, 0, source, out] = 255.0 / self.pixel_max * self.scale[out]
        return kernel

    def call(self, inputs):
        from keras import ops

        kernel = ops.convert_to_tensor(self.kernel(inputs.shape[-1]), dtype=inputs.dtype)
        offset = ops.convert_to_tensor(np.array(self.offset, "float32"), dtype=inputs.dtype)
        return ops.conv(inputs, kernel, padding="valid") + offset

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 3)

    def record(self):
        """What the model does to the pixels it is given, as model.json records it."""
        factor = [255.0 / self.pixel_max * s for s in self.scale]
        return {
            "input": f"float pixels in [0, {self.pixel_max:g}], 1 (grey) or 3 (RGB) channels",
            "library": self.library,
            "channels": "BGR" if self.bgr else "RGB",
            "scale": factor,
            "offset": self.offset,
            "then_inside_backbone": self.inside or None,
        }

    def get_config(self):
        return {
            **super().get_config(),
            "pixel_max": self.pixel_max,
            "scale": self.scale,
            "offset": self.offset,
            "bgr": self.bgr,
            "library": self.library,
            "inside": self.inside,
        }
