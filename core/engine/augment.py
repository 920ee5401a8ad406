"""Data augmentation with Keras preprocessing layers, applied to training batches only.

The layers run in the input pipeline, not inside the model, so the exported model carries none of
them and validation, test and deployment see the data as it is.
"""

import math

import numpy as np

from core.errors import UsageError

LAYERS = {
    "flip": lambda layers, seed: layers.RandomFlip("horizontal", seed=seed),
    "rotate": lambda layers, seed: layers.RandomRotation(0.05, seed=seed),
    "zoom": lambda layers, seed: layers.RandomZoom(0.1, seed=seed),
    "translate": lambda layers, seed: layers.RandomTranslation(0.1, 0.1, seed=seed),
}


def augmented(x, y, batch_size, names, seed):
    """A shuffling ``keras.utils.PyDataset`` of ``(x, y)`` batches with ``names`` applied."""
    import keras

    if np.ndim(x) != 4:
        raise UsageError(
            f"--augment needs image inputs (height, width, channels); the data has shape {tuple(np.shape(x)[1:])}"
        )
    pipeline = keras.Sequential([LAYERS[name](keras.layers, seed + i) for i, name in enumerate(names)])

    class Augmented(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.rng = np.random.default_rng(seed)
            self.order = self.rng.permutation(len(x))

        def __len__(self):
            return math.ceil(len(x) / batch_size)

        def __getitem__(self, index):
            chosen = np.sort(self.order[index * batch_size : (index + 1) * batch_size])
            images = keras.ops.convert_to_numpy(pipeline(x[chosen], training=True))
            return images.astype(x.dtype), y[chosen]

        def on_epoch_end(self):
            self.order = self.rng.permutation(len(x))

    return Augmented()
