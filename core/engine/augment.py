"""Data augmentation with Keras preprocessing layers, applied to training batches only.

The layers run in the input pipeline, not inside the model, so the exported model carries none of
them and validation, test and deployment see the data as it is. Where the targets are masks (a class
per pixel, shape (n, H, W)), each mask moves with its image: the same flip, rotation, zoom and shift,
resampled to the nearest pixel (Keras's ``segmentation_masks``), so classes are never blended.
Where the targets are boxes (detection: float (n, max_boxes, 5), rel_xyxy and a class id, padding
rows of class -1), each image's boxes move with it through the layers' ``bounding_box_format``; a
box moved wholly out of its image becomes a padding row, and the layers that resample fill the
uncovered edge with black rather than a reflection (a reflected object would have no box).
"""

import math

import numpy as np

from core.errors import UsageError

# With boxes: pixel xyxy, since Keras 3.15.1's RandomRotation reads its boxes as xyxy whatever
# bounding_box_format says (rel_xyxy boxes came out divided by the image size once more).
BOXES = {"bounding_box_format": "xyxy"}
FILL = {"fill_mode": "constant"}
LAYERS = {
    "flip": lambda layers, seed, boxes: layers.RandomFlip("horizontal", seed=seed, **(BOXES if boxes else {})),
    "rotate": lambda layers, seed, boxes: layers.RandomRotation(0.05, seed=seed, **(BOXES | FILL if boxes else {})),
    "zoom": lambda layers, seed, boxes: layers.RandomZoom(0.1, seed=seed, **(BOXES | FILL if boxes else {})),
    "translate": lambda layers, seed, boxes: layers.RandomTranslation(
        0.1, 0.1, seed=seed, **(BOXES | FILL if boxes else {})
    ),
}


def augmented(x, y, batch_size, names, seed):
    """A shuffling ``keras.utils.PyDataset`` of ``(x, y)`` batches with ``names`` applied (to masks
    or boxes ``y`` as to their images: see the module doc)."""
    import keras

    if np.ndim(x) != 4:
        raise UsageError(
            f"--augment needs image inputs (height, width, channels); the data has shape {tuple(np.shape(x)[1:])}"
        )
    boxes = is_boxes(x, y)
    pipeline = [LAYERS[name](keras.layers, seed + i, boxes) for i, name in enumerate(names)]
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
            if boxes:
                return transform_boxes(keras, pipeline, x[chosen], y[chosen])
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


def is_boxes(x, y):
    """Whether targets ``y`` are boxes of images ``x``: float (n, max_boxes, 5)."""
    return (
        y is not None
        and np.ndim(x) == 4
        and np.ndim(y) == 3
        and np.shape(y)[2] == 5
        and len(y) == len(x)
        and np.issubdtype(y.dtype, np.floating)
    )


def _copy(keras, transformation):
    """A copy of a drawn transformation's tensors, one for each side it is applied to (Keras's torch
    ``affine_transform`` rewrites its matrix in place: see ``transform``)."""
    return keras.tree.map_structure(lambda v: keras.ops.copy(v) if keras.ops.is_tensor(v) else v, transformation)


def transform(keras, pipeline, images, masks):
    """``(images, masks)`` through ``pipeline``'s layers, each drawing one transformation for both.

    Each side gets its own copy of the transformation: Keras 3.15.1's torch ``affine_transform``
    rewrites the matrix it is given in place, so with Keras's own ``{"images", "segmentation_masks"}``
    call the masks of a rotation came out rotated by another matrix than their images."""
    dtypes = images.dtype, masks.dtype
    masks = masks[..., None].astype("float32")

    for layer in pipeline:
        drawn = layer.get_random_transformation({"images": images, "segmentation_masks": masks}, training=True)
        images = layer.transform_images(images, _copy(keras, drawn), training=True)
        masks = layer.transform_segmentation_masks(masks, _copy(keras, drawn), training=True)
    moved = np.rint(keras.ops.convert_to_numpy(masks)[..., 0])
    return keras.ops.convert_to_numpy(images).astype(dtypes[0]), moved.astype(dtypes[1])


def transform_boxes(keras, pipeline, images, y):
    """``(images, y)`` through ``pipeline``'s layers, each drawing one transformation for the images
    and their boxes (a copy each, as ``transform`` does); boxes in pixels on the way through."""
    from keras.utils import bounding_boxes

    height, width = images.shape[1:3]
    dtype = images.dtype
    labels = np.where(y[..., 4] >= 0, y[..., 4], -1).astype("int32")
    boxes = {"boxes": bounding_boxes.convert_format(y[..., :4], "rel_xyxy", "xyxy", height=height, width=width)}
    boxes["labels"] = keras.ops.convert_to_tensor(labels)

    for layer in pipeline:
        drawn = layer.get_random_transformation({"images": images, "bounding_boxes": boxes}, training=True)
        images = layer.transform_images(images, _copy(keras, drawn), training=True)
        boxes = layer.transform_bounding_boxes(boxes, _copy(keras, drawn), training=True)
    rel = bounding_boxes.convert_format(boxes["boxes"], "xyxy", "rel_xyxy", height=height, width=width)
    kept = keras.ops.convert_to_numpy(boxes["labels"]) >= 0  # moved out of the image: Keras sets -1
    moved = np.concatenate([keras.ops.convert_to_numpy(rel), y[..., 4:]], axis=-1).astype(y.dtype)
    moved[~kept] = (0, 0, 0, 0, -1)  # the padding row of the format
    return keras.ops.convert_to_numpy(images).astype(dtype), moved
