"""The ``yolo`` detector's Keras classes: :class:`DecodeBoxes`, the head's per-level outputs turned
into per-anchor rel_xyxy boxes and class scores (inside the model, so an exported file decodes
too), and :class:`DetectionLoss`, which assigns targets to anchors (center sampling, the smallest
box winning a shared anchor, every box at least its nearest anchor) and sums a CIoU box loss
(``keras.utils.bounding_boxes.compute_ciou``) and a focal classification loss
(``keras.losses.binary_focal_crossentropy``) over the positives.

Anchors are the centers of each level's grid cells, level by level, row by row (``anchor_points``);
a box's sides are at most ``reach`` strides from its anchor.
"""

import keras
import numpy as np
from keras import ops

from plugins.architectures._layers.parts import serializable


def anchor_points(height, width, strides):
    """``(centers (A, 2) as relative x, y; strides (A, 2) relative to width, height)``, numpy float32."""
    centers, steps = [], []
    for stride in strides:
        rows, cols = -(-height // stride), -(-width // stride)
        y, x = np.meshgrid((np.arange(rows) + 0.5) * stride / height, (np.arange(cols) + 0.5) * stride / width)
        centers.append(np.stack([x.T.ravel(), y.T.ravel()], -1))
        steps.append(np.tile([[stride / width, stride / height]], (rows * cols, 1)))
    return np.concatenate(centers).astype("float32"), np.concatenate(steps).astype("float32")


@serializable
class DecodeBoxes(keras.layers.Layer):
    """``[box_0, cls_0, box_1, cls_1, ...]`` (per level: ``(N, h, w, 4)`` and ``(N, h, w, C)`` raw
    outputs) → ``(N, anchors, 4 + C)``: rel_xyxy boxes, each side ``sigmoid(raw) * reach`` strides
    from its anchor, clipped to the image, then the sigmoid class scores."""

    def __init__(self, image_size, strides, reach=8.0, **kwargs):
        super().__init__(**kwargs)
        self.image_size, self.strides, self.reach = tuple(image_size), tuple(strides), float(reach)
        centers, steps = anchor_points(*self.image_size, self.strides)
        self._centers = np.concatenate([centers, centers], -1)[None]  # x, y, x, y
        self._scale = (np.concatenate([-steps, steps], -1) * self.reach)[None]  # -l, -t, +r, +b

    def call(self, inputs):
        boxes, scores = [], []
        for box, cls in zip(inputs[0::2], inputs[1::2]):
            boxes.append(ops.reshape(box, (-1, box.shape[1] * box.shape[2], 4)))
            scores.append(ops.reshape(cls, (-1, cls.shape[1] * cls.shape[2], cls.shape[3])))
        box = ops.sigmoid(ops.concatenate(boxes, axis=1))
        centers = ops.convert_to_tensor(self._centers, dtype=box.dtype)
        scale = ops.convert_to_tensor(self._scale, dtype=box.dtype)
        boxes = ops.clip(centers + box * scale, 0.0, 1.0)  # inside the image (a bounded range for int8 too)
        return ops.concatenate([boxes, ops.sigmoid(ops.concatenate(scores, axis=1))], axis=-1)

    def compute_output_shape(self, input_shapes):
        anchors = sum(s[1] * s[2] for s in input_shapes[0::2])
        return (input_shapes[0][0], anchors, 4 + input_shapes[1][-1])

    def get_config(self):
        return {
            **super().get_config(),
            "image_size": list(self.image_size),
            "strides": list(self.strides),
            "reach": self.reach,
        }


@serializable
class DetectionLoss(keras.losses.Loss):
    """CIoU box loss and focal classification loss of per-anchor outputs ``(N, A, 4 + C)`` against
    ``_boxes`` targets ``(N, max_boxes, 5)``, each summed over the batch and divided by its number
    of positive anchors; ``box_weight`` weighs the box term. An anchor is a candidate of a box when
    it lies inside the box, within ``radius`` strides of its center, and the box's sides are within
    ``reach`` strides of it; each box also takes its nearest anchor; an anchor several boxes claim
    goes to the smallest."""

    def __init__(
        self, image_size, strides, reach=8.0, radius=2.5, box_weight=2.0, gamma=2.0, name="detection_loss", **kwargs
    ):
        super().__init__(name=name, **kwargs)
        self.image_size, self.strides = tuple(image_size), tuple(strides)
        self.reach, self.radius, self.box_weight, self.gamma = (
            float(reach),
            float(radius),
            float(box_weight),
            float(gamma),
        )
        self._centers, self._steps = anchor_points(*self.image_size, self.strides)

    def call(self, y_true, y_pred):
        from keras.utils.bounding_boxes import compute_ciou

        y_true = ops.cast(y_true, y_pred.dtype)
        boxes, classes = y_true[..., :4], y_true[..., 4]  # (N, M, 4), (N, M)
        valid = classes >= 0
        centers = ops.convert_to_tensor(self._centers, y_pred.dtype)[None, :, None, :]  # (1, A, 1, 2)
        steps = ops.convert_to_tensor(self._steps, y_pred.dtype)[None, :, None, :]
        low, high = boxes[:, None, :, :2], boxes[:, None, :, 2:]  # (N, 1, M, 2)
        inside = ops.all((centers > low) & (centers < high), axis=-1)
        middle = (low + high) / 2
        near = ops.all(ops.abs(centers - middle) < self.radius * steps, axis=-1)
        reach = ops.all(ops.maximum(centers - low, high - centers) <= self.reach * steps, axis=-1)
        distance = ops.sum(ops.square(centers - middle), axis=-1)  # (N, A, M)
        nearest = ops.transpose(ops.one_hot(ops.argmin(distance, axis=1), distance.shape[1]), (0, 2, 1)) > 0
        claims = ((inside & near & reach) | nearest) & valid[:, None, :]
        area = ops.prod(high - low, axis=-1)  # (N, 1, M)
        owner = ops.argmin(ops.where(claims, area, 1e9), axis=-1)  # (N, A)
        positive = ops.cast(ops.any(claims, axis=-1), y_pred.dtype)
        count = ops.maximum(ops.sum(positive), 1.0)
        target_box = ops.take_along_axis(boxes, owner[..., None], axis=1)
        target_class = ops.take_along_axis(classes, owner, axis=1)
        num_classes = y_pred.shape[-1] - 4
        onehot = ops.one_hot(ops.cast(ops.maximum(target_class, 0), "int32"), num_classes) * positive[..., None]
        scores = ops.clip(y_pred[..., 4:], 1e-7, 1 - 1e-7)
        focal = keras.losses.binary_focal_crossentropy(onehot[..., None], scores[..., None], gamma=self.gamma)
        cls_loss = ops.sum(focal, axis=(1, 2))  # (N,)
        ciou = compute_ciou(target_box, y_pred[..., :4], "xyxy")
        box_loss = ops.sum((1.0 - ciou) * positive, axis=1)
        batch = ops.cast(ops.shape(y_pred)[0], y_pred.dtype)
        return (self.box_weight * box_loss + cls_loss) * batch / count

    def get_config(self):
        return {
            **super().get_config(),
            "image_size": list(self.image_size),
            "strides": list(self.strides),
            "reach": self.reach,
            "radius": self.radius,
            "box_weight": self.box_weight,
            "gamma": self.gamma,
        }
