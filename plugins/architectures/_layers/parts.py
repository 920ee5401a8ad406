"""What the generative families (``vae``, ``diffusion``, ``gan``) share: the registration of their
classes, the config of a model made of functional sub-models (its *parts*), and how often a conv
stack may halve an image."""

import keras

serializable = keras.saving.register_keras_serializable(package="kerastack")


def downsamplings(shape, levels):
    """How many stride-2 halvings an (H, W, ...) image takes: at most ``levels``, while both sides
    are even and at least 4 (so a decoder doubling back restores the exact shape)."""
    h, w, n = shape[0], shape[1], 0
    while n < levels and h % 2 == 0 and w % 2 == 0 and min(h, w) >= 4:
        h, w, n = h // 2, w // 2, n + 1
    return n


class Parts:
    """Mixin (before ``keras.Model``) for a model whose constructor takes the functional sub-models
    named in ``PARTS`` (e.g. ``encoder``, ``decoder``): ``parts_config()`` serializes them for
    ``get_config``, and ``from_config`` rebuilds them before calling the constructor."""

    PARTS = ()

    def parts_config(self):
        return {name: keras.saving.serialize_keras_object(getattr(self, name)) for name in self.PARTS}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for name in cls.PARTS:
            config[name] = keras.saving.deserialize_keras_object(config[name])
        return cls(**config)
