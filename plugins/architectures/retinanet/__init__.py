"""``retinanet``: RetinaNet as a ``detection`` architecture, on KerasHub's parts: its
``RetinaNetBackbone`` (an image encoder and a feature pyramid, P3-P7 at most), its
``AnchorGenerator`` (9 anchors per position: 3 scales x 3 aspect ratios) and its ``BoxMatcher``
for the training targets.

The box and class heads are RetinaNet's (convolutions shared by the levels, the class prior of
0.01), written here in ``keras.layers``: KerasHub's own heads are not serializable outside its
``RetinaNetObjectDetector`` task, and a nested task compiles itself again when loaded.
:class:`~plugins.architectures.retinanet.layers.DecodeAnchors` decodes them inside the model, so
its one output is the task's ``(N, anchors, 4 + C)`` and the exported file selects the final boxes
in its graph as for any detector. Trained with
:class:`~plugins.architectures.retinanet.layers.AnchorLoss` (RetinaNet's IoU assignment, CIoU +
focal), compiled here with Adam (gradients clipped to norm 10).

``preset``: ``none`` builds a small randomly initialized model (offline; trained from scratch); a
KerasHub preset name (``retinanet_resnet50_fpn_coco``, or an image backbone such as
``resnet_50_imagenet``, downloaded once into KaggleHub's cache) or a folder written by
``save_to_preset`` gives its backbone and weights: a RetinaNet backbone whole (its levels), an
image encoder with a new feature pyramid. The heads are new, for the dataset's classes. A preset's
image converter is baked in as ``PixelPreprocessing`` and its BatchNorm statistics are kept, as in
``hub.py``.
"""

import math

from core import UsageError, hookimpl

# preset=none: a ResNet of basic blocks (KerasHub's smallest: its first stage has 64 filters).
SMALL_ENCODER = {"filters": 64, "stages": 4}


@hookimpl
def register_architectures(register):
    register(
        "retinanet",
        build,
        summary="KerasHub RetinaNet (preset=none|NAME|DIR): ResNet + FPN, 9 anchors per position, CIoU + focal loss",
        tasks=("detection",),
    )


def build(
    spec,
    preset="none",
    min_level=3,
    max_level=None,
    anchor_size=4.0,
    head_layers=None,
    head_filters=None,
    box_weight=1.0,
    learning_rate=1e-3,
    pixel_max=1.0,
):
    """Per-anchor boxes and scores ``(N, anchors, 4 + C)`` for images (H, W[, C]).

    Anchors at levels ``min_level`` to ``max_level`` (strides 2^level) of side ``anchor_size`` x the
    stride, at 3 scales and 3 aspect ratios; ``max_level`` defaults to the deepest level (at most 7,
    RetinaNet's) whose anchors still fit in the image. An anchor learns a box when they overlap by
    IoU 0.5, so ``anchor_size`` should suit the objects: 2 for boxes of 12-30 pixels at level 3.
    H and W must be divisible by 2^max_level. ``head_layers`` convolutions of ``head_filters``
    in each head before its output (RetinaNet's 4 of 256; 1 of 64 for ``preset=none``), their
    weights shared by the levels; ``box_weight``: the CIoU term's
    weight beside the focal one; ``pixel_max``: a white pixel's value (for a preset's converter)."""
    import keras
    from keras import layers

    from plugins.architectures.hub import _keras_hub
    from plugins.architectures.retinanet.layers import ASPECT_RATIOS, NUM_SCALES, AnchorLoss, DecodeAnchors

    keras_hub = _keras_hub()
    height, width = _image_size(spec)
    min_level = int(min_level)
    inputs = keras.Input(spec.input_shape, name="image")
    x = inputs if len(spec.input_shape) == 3 else layers.Reshape((height, width, 1))(inputs)
    if preset == "none":
        max_level = _max_level(height, width, min_level, max_level, anchor_size)
        _check_levels(height, width, min_level, max_level)
        encoder = _small_encoder(keras_hub, (height, width, x.shape[-1]))
        backbone = keras_hub.models.RetinaNetBackbone(
            image_encoder=encoder,
            min_level=min_level,
            max_level=max_level,
            use_p5=False,
            image_shape=(height, width, x.shape[-1]),
        )
    else:
        backbone, x = _pretrained(keras_hub, preset, x, pixel_max, min_level, max_level, anchor_size)
        min_level, max_level = backbone.min_level, backbone.max_level
        _check_levels(height, width, min_level, max_level)
    # A preset's BatchNorm keeps its statistics, said in the graph too (hub.py, findings.md).
    features = backbone(x) if preset == "none" else backbone(x, training=False)
    layers_deep = int(head_layers if head_layers is not None else 1 if preset == "none" else 4)
    width_head = int(head_filters if head_filters is not None else 64 if preset == "none" else 256)
    anchors = NUM_SCALES * len(ASPECT_RATIOS)
    box_head = _head("box", anchors * 4, layers_deep, width_head, 0.0)
    # RetinaNet's prior: class scores start at 0.01, so the many background anchors do not swamp
    # the first steps.
    class_head = _head("class", anchors * spec.num_classes, layers_deep, width_head, -math.log((1 - 0.01) / 0.01))
    deltas, logits = [], []
    for level in range(min_level, max_level + 1):
        feature = features[f"P{level}"]
        deltas.append(layers.Reshape((-1, 4), name=f"box_P{level}")(box_head(feature)))
        logits.append(layers.Reshape((-1, spec.num_classes), name=f"class_P{level}")(class_head(feature)))
    deltas = layers.Concatenate(axis=1, name="bbox_regression")(deltas)
    logits = layers.Concatenate(axis=1, name="cls_logits")(logits)
    levels = (min_level, max_level, anchor_size)
    outputs = DecodeAnchors((height, width), *levels, name="detections")([deltas, logits])
    model = keras.Model(inputs, outputs, name="retinanet")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate, global_clipnorm=10.0),  # as torchvision's recipe clips
        loss=AnchorLoss((height, width), *levels, box_weight=box_weight),
    )
    return model


def _head(name, outputs, depth, filters, bias):
    """RetinaNet's head, one set of weights for every level: ``depth`` 3x3 convolutions with ReLU,
    then a 3x3 convolution to ``outputs`` per position (the paper's initialization: normal with
    standard deviation 0.01, the last bias ``bias``)."""
    import keras
    from keras import layers

    init = keras.initializers.RandomNormal(stddev=0.01, seed=None)
    convs = [
        layers.Conv2D(filters, 3, padding="same", activation="relu", kernel_initializer=init, name=f"{name}_conv_{i}")
        for i in range(depth)
    ]
    last = layers.Conv2D(
        outputs,
        3,
        padding="same",
        kernel_initializer=init,
        bias_initializer=keras.initializers.Constant(bias),
        name=f"{name}_output",
    )

    def apply(x):
        for conv in convs:
            x = conv(x)
        return last(x)

    return apply


def _image_size(spec):
    shape = spec.input_shape
    if len(shape) not in (2, 3):
        raise UsageError(f"architecture 'retinanet' needs image inputs (H, W[, C]); the dataset gives {shape}")
    if not spec.num_classes:
        raise UsageError("architecture 'retinanet' needs class names (the dataset gives none)")
    return int(shape[0]), int(shape[1])


def _max_level(height, width, min_level, max_level, anchor_size):
    """``max_level``, or the deepest level up to 7 whose base anchor (anchor_size x 2^level) is no
    larger than the image's shorter side, and at least ``min_level`` + 2 (a three-level pyramid)."""
    if max_level is not None:
        return int(max_level)
    fits = int(math.floor(math.log2(min(height, width) / float(anchor_size))))
    return max(min_level + 2, min(7, fits))


def _check_levels(height, width, min_level, max_level):
    if not 2 <= min_level <= max_level:
        raise UsageError(f"architecture 'retinanet' needs 2 <= min_level <= max_level; got {min_level}, {max_level}")
    step = 2**max_level
    if height % step or width % step:
        size = -(-max(height, width) // step) * step
        raise UsageError(
            f"architecture 'retinanet' with max_level={max_level} needs height and width divisible by {step}; "
            f"the images are {height}x{width}: resize them (e.g. --data-opt size={size}) or lower --hp max_level"
        )


def _small_encoder(keras_hub, shape):
    """preset=none's image encoder: a ResNet with one basic block per stage, its features P2-P5."""
    filters, stages = SMALL_ENCODER["filters"], SMALL_ENCODER["stages"]
    return keras_hub.models.ResNetBackbone(
        input_conv_filters=[filters],
        input_conv_kernel_sizes=[3],
        stackwise_num_filters=[filters] * stages,
        stackwise_num_blocks=[1] * stages,
        stackwise_num_strides=[1] + [2] * (stages - 1),
        block_type="basic_block",
        use_pre_activation=False,
        image_shape=shape,
    )


def _pretrained(keras_hub, preset, x, pixel_max, min_level, max_level, anchor_size):
    """``(backbone, x)``: a RetinaNet backbone with the preset's weights (the preset's own, or a
    new feature pyramid over the preset's image encoder) and the images made into what it expects
    by the preset's image converter (``PixelPreprocessing``)."""
    from plugins.architectures.hub import _from_preset, preset_pixels, resolve_preset
    from plugins.architectures.pretrained import keep_batchnorm_statistics

    arch = "retinanet"
    where = resolve_preset(arch, preset, keras_hub.models.ObjectDetector)
    backbone = _from_preset(arch, preset, keras_hub.models.Backbone)
    if not isinstance(backbone, keras_hub.models.RetinaNetBackbone):
        if not getattr(backbone, "pyramid_outputs", None):
            raise UsageError(
                f"architecture {arch!r}: preset {preset!r} is a {type(backbone).__name__}, which gives no "
                "feature pyramid (P2-P5); use a RetinaNet preset or an image backbone such as a ResNet"
            )
        height, width = int(x.shape[1]), int(x.shape[2])
        max_level = _max_level(height, width, min_level, max_level, anchor_size)
        keep_batchnorm_statistics(backbone)
        backbone = keras_hub.models.RetinaNetBackbone(
            image_encoder=backbone,
            min_level=min_level,
            max_level=max_level,
            use_p5=False,
            image_shape=(height, width, 3),
        )
    x = preset_pixels(x, keras_hub, where, preset, pixel_max)
    keep_batchnorm_statistics(backbone)
    return backbone, x
