"""Data augmentation with Keras preprocessing layers, applied to training batches only.

The layers run in the input pipeline, not inside the model, so the exported model carries none of
them and validation, test and deployment see the data as it is. Where the targets are masks (a class
per pixel, shape (n, H, W)), each mask moves with its image: the same flip, rotation, zoom and shift,
resampled to the nearest pixel (Keras's ``segmentation_masks``), so classes are never blended.
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
    """A shuffling ``keras.utils.PyDataset`` of ``(x, y)`` batches with ``names`` applied (to masks
    ``y`` as to their images: see the module doc)."""
    import keras

    if np.ndim(x) != 4:
        raise UsageError(
            f"--augment needs image inputs (height, width, channels); the data has shape {tuple(np.shape(x)[1:])}"
        )
    pipeline = [LAYERS[name](keras.layers, seed + i) for i, name in enumerate(names)]
    masks = is_masks(x, y)

    class Augmented(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.rng = np.random.default_rng(seed)
            self.order = self.rng.permutation(len(x))

        def __len__(self):
            return math.ceil(len(x) / batch_size)

        def __getitem__(self, index):
            chosen = np.sort(self.order[index * batch_size : (index + 1) * batch_size])
            if masks:
                return transform(keras, pipeline, x[chosen], y[chosen])
            images = x[chosen]
            for layer in pipeline:
                images = layer(images, training=True)
            return keras.ops.convert_to_numpy(images).astype(x.dtype), y[chosen]

        def on_epoch_end(self):
            self.order = self.rng.permutation(len(x))

    return Augmented()


def is_masks(x, y):
    """Whether targets ``y`` are masks of images ``x``: integer classes of shape (n, H, W)."""
    return y is not None and np.ndim(y) == 3 and np.shape(y) == np.shape(x)[:3] and np.issubdtype(y.dtype, np.integer)


def transform(keras, pipeline, images, masks):
    """``(images, masks)`` through ``pipeline``'s layers, each drawing one transformation for both.

    Each side gets its own copy of the transformation: Keras 3.15.1's torch ``affine_transform``
    rewrites the matrix it is given in place, so with Keras's own ``{"images", "segmentation_masks"}``
    call the masks of a rotation came out rotated by another matrix than their images."""
    dtypes = images.dtype, masks.dtype
    masks = masks[..., None].astype("float32")

    def copy(transformation):
        return keras.tree.map_structure(lambda v: keras.ops.copy(v) if keras.ops.is_tensor(v) else v, transformation)

    for layer in pipeline:
        drawn = layer.get_random_transformation({"images": images, "segmentation_masks": masks}, training=True)
        images = layer.transform_images(images, copy(drawn), training=True)
        masks = layer.transform_segmentation_masks(masks, copy(drawn), training=True)
    moved = np.rint(keras.ops.convert_to_numpy(masks)[..., 0])
    return keras.ops.convert_to_numpy(images).astype(dtypes[0]), moved.astype(dtypes[1])
