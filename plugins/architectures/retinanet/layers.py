"""The ``retinanet`` detector's Keras classes, on the ``detection`` task's contract (one output
``(N, anchors, 4 + C)``: rel_xyxy boxes and sigmoid class scores per anchor).

- :func:`anchor_boxes`: KerasHub's ``AnchorGenerator`` anchors of an image size, relative, in numpy.
- :class:`DecodeAnchors`: KerasHub RetinaNet's raw outputs (``bbox_regression``: center_xywh deltas
  from each anchor; ``cls_logits``) decoded inside the model by
  ``keras.utils.bounding_boxes.decode_deltas_to_boxes``, so an exported file decodes too and the
  task's selection (NMS) applies as to any detector.
- :class:`AnchorLoss`: RetinaNet's assignment (KerasHub's ``BoxMatcher``: IoU ≥ 0.5 positive, < 0.4
  background, between ignored, plus torchvision's low-quality matches: each box also takes the
  anchors it overlaps best) with a CIoU box loss (``keras.utils.bounding_boxes.compute_ciou``) on
  the decoded boxes and the focal classification loss (``keras.losses.binary_focal_crossentropy``,
  alpha 0.25, gamma 2), each divided by the number of positive anchors.
"""

import math

import keras
import numpy as np
from keras import ops

from plugins.architectures._layers.parts import serializable

# RetinaNet's anchors per position: 3 scales (2^0, 2^1/3, 2^2/3) x 3 aspect ratios.
NUM_SCALES = 3
ASPECT_RATIOS = (0.5, 1.0, 2.0)
# The largest log-scale a box side may grow from its anchor (torchvision's BBOX_XFORM_CLIP), so exp
# never overflows in a badly started training.
SIZE_CLIP = math.log(1000.0 / 16)


def anchor_boxes(image_size, min_level, max_level, anchor_size):
    """``(A, 4)`` float32 rel_xyxy anchors of KerasHub's ``AnchorGenerator`` for images of
    ``image_size`` (H, W), level by level, position by position, then scale and aspect ratio:
    the order of KerasHub RetinaNet's outputs."""
    from keras_hub.layers import AnchorGenerator

    height, width = image_size
    generator = AnchorGenerator(
        "xyxy",
        min_level=min_level,
        max_level=max_level,
        num_scales=NUM_SCALES,
        aspect_ratios=list(ASPECT_RATIOS),
        anchor_size=anchor_size,
    )
    levels = generator(np.zeros((1, height, width, 1), "float32"))
    anchors = np.concatenate([ops.convert_to_numpy(levels[f"P{i}"]) for i in range(min_level, max_level + 1)])
    return (anchors / np.array([width, height, width, height], "float32")).astype("float32")


class _Anchored:
    """What both classes keep: the image size and anchor settings (config), the anchors (numpy)."""

    def _anchor_setup(self, image_size, min_level, max_level, anchor_size):
        self.image_size = tuple(int(s) for s in image_size)
        self.min_level, self.max_level, self.anchor_size = int(min_level), int(max_level), float(anchor_size)
        self._anchors = anchor_boxes(self.image_size, self.min_level, self.max_level, self.anchor_size)

    def _anchor_config(self):
        return {
            "image_size": list(self.image_size),
            "min_level": self.min_level,
            "max_level": self.max_level,
            "anchor_size": self.anchor_size,
        }


@serializable
class DecodeAnchors(_Anchored, keras.layers.Layer):
    """``[bbox_regression (N, A, 4), cls_logits (N, A, C)]`` → ``(N, A, 4 + C)``: each anchor's
    deltas (center_xywh, KerasHub's encoding) applied to it, the box clipped to the image, then the
    sigmoid class scores."""

    def __init__(self, image_size, min_level, max_level, anchor_size, **kwargs):
        super().__init__(**kwargs)
        self._anchor_setup(image_size, min_level, max_level, anchor_size)

    def call(self, inputs):
        from keras.utils.bounding_boxes import decode_deltas_to_boxes

        deltas, logits = inputs
        deltas = ops.concatenate([deltas[..., :2], ops.minimum(deltas[..., 2:], SIZE_CLIP)], axis=-1)
        anchors = ops.convert_to_tensor(self._anchors, dtype=deltas.dtype)
        # Relative anchors decode to relative boxes: the decoding is linear in each axis' scale.
        boxes = decode_deltas_to_boxes(
            anchors=anchors,
            boxes_delta=deltas,
            anchor_format="xyxy",
            box_format="xyxy",
            encoded_format="center_xywh",
        )
        boxes = ops.clip(boxes, 0.0, 1.0)  # inside the image (a bounded range for int8 too)
        return ops.concatenate([boxes, ops.sigmoid(logits)], axis=-1)

    def compute_output_shape(self, input_shapes):
        deltas, logits = input_shapes
        return (deltas[0], deltas[1], 4 + logits[-1])

    def get_config(self):
        return {**super().get_config(), **self._anchor_config()}


@serializable
class AnchorLoss(_Anchored, keras.losses.Loss):
    """RetinaNet's loss of per-anchor outputs ``(N, A, 4 + C)`` against ``_boxes`` targets
    ``(N, max_boxes, 5)``: ``box_weight`` x CIoU loss over the positive anchors + focal loss over
    all but the ignored ones, each summed over the batch and divided by its positive anchors."""

    def __init__(
        self,
        image_size,
        min_level,
        max_level,
        anchor_size,
        positive_iou=0.5,
        negative_iou=0.4,
        box_weight=1.0,
        alpha=0.25,
        gamma=2.0,
        name="anchor_loss",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self._anchor_setup(image_size, min_level, max_level, anchor_size)
        self.positive_iou, self.negative_iou = float(positive_iou), float(negative_iou)
        self.box_weight, self.alpha, self.gamma = float(box_weight), float(alpha), float(gamma)

    def call(self, y_true, y_pred):
        from keras.utils.bounding_boxes import compute_ciou, compute_iou
        from keras_hub.layers import BoxMatcher

        y_true = ops.cast(y_true, y_pred.dtype)
        boxes, classes = y_true[..., :4], y_true[..., 4]  # (N, M, 4), (N, M)
        valid = (classes >= 0)[:, None, :]  # (N, 1, M)
        anchors = ops.convert_to_tensor(self._anchors, dtype=y_pred.dtype)
        iou = compute_iou(anchors, boxes, bounding_box_format="xyxy")  # (N, A, M); scale-free, so relative
        iou = ops.where(valid, iou, -1.0)  # padding rows match nothing
        matcher = BoxMatcher(thresholds=[self.negative_iou, self.positive_iou], match_values=[-1, -2, 1])
        owner, verdict = matcher(iou)  # (N, A): the best box; -1 background, -2 ignored, 1 positive
        best = ops.max(iou, axis=1, keepdims=True)  # each box's best IoU over the anchors (N, 1, M)
        low_quality = ops.any(valid & (best > 0) & (iou >= best), axis=-1)
        positive = (verdict == 1) | low_quality
        counted = ops.cast(positive | (verdict == -1), y_pred.dtype)  # all but the ignored
        positive = ops.cast(positive, y_pred.dtype)
        count = ops.maximum(ops.sum(positive), 1.0)

        target_box = ops.take_along_axis(boxes, ops.cast(owner, "int32")[..., None], axis=1)
        target_class = ops.take_along_axis(classes, ops.cast(owner, "int32"), axis=1)
        num_classes = y_pred.shape[-1] - 4
        onehot = ops.one_hot(ops.cast(ops.maximum(target_class, 0), "int32"), num_classes) * positive[..., None]
        scores = ops.clip(y_pred[..., 4:], 1e-7, 1 - 1e-7)
        focal = keras.losses.binary_focal_crossentropy(
            onehot[..., None], scores[..., None], apply_class_balancing=True, alpha=self.alpha, gamma=self.gamma
        )
        cls_loss = ops.sum(ops.sum(focal, axis=-1) * counted, axis=1)  # (N,)
        ciou = compute_ciou(target_box, y_pred[..., :4], "xyxy")
        box_loss = ops.sum((1.0 - ciou) * positive, axis=1)
        batch = ops.cast(ops.shape(y_pred)[0], y_pred.dtype)
        return (self.box_weight * box_loss + cls_loss) * batch / count

    def get_config(self):
        return {
            **super().get_config(),
            **self._anchor_config(),
            "positive_iou": self.positive_iou,
            "negative_iou": self.negative_iou,
            "box_weight": self.box_weight,
            "alpha": self.alpha,
            "gamma": self.gamma,
        }
