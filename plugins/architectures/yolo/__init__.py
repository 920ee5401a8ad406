"""``yolo``: a small anchor-free single-stage detector in the manner of YOLOv8, in ``keras.layers``.

A CSP backbone (stride-2 convs, each followed by a C2f-like block: two 1x1 branches, one through
residual 3x3 pairs, concatenated and mixed), an FPN top-down and PAN bottom-up neck over three
levels (strides ``min_stride``, 2x and 4x), and a decoupled head per level (a box branch and a
class branch). :class:`~plugins.architectures.yolo.layers.DecodeBoxes` turns the head's outputs
into per-anchor rel_xyxy boxes and class scores inside the model, so the model's one output is
``(N, anchors, 4 + C)``; the ``detection`` task (and an exported file's graph) selects the final
boxes from it. Trained with :class:`~plugins.architectures.yolo.layers.DetectionLoss` (CIoU + focal),
compiled here with Adam.
"""

import math

from core import hookimpl


@hookimpl
def register_architectures(register):
    register(
        "yolo",
        build,
        summary="anchor-free detector: C2f backbone, FPN/PAN neck, decoupled head (YOLOv8-like), CIoU + focal loss",
        tasks=("detection",),
    )


def build(spec, filters=16, depth=1, min_stride=8, reach=8.0, box_weight=2.0, learning_rate=2e-3):
    """Per-anchor boxes and scores ``(N, anchors, 4 + C)`` for images (H, W[, C]).

    ``filters`` at stride 2, doubling per level up to 4x at the deepest; ``depth`` residual pairs in
    each C2f block; ``min_stride`` the finest level's stride (4 for images of 32 pixels, 8 from 64);
    H and W must be divisible by ``4 * min_stride``. ``reach``: how many strides a box's side may lie
    from its anchor; ``box_weight``: the CIoU term's weight beside the focal one."""
    import keras
    from keras import layers

    from plugins.architectures.yolo.layers import DecodeBoxes, DetectionLoss

    height, width = check_input(spec, min_stride)
    classes = spec.num_classes
    inputs = keras.Input(spec.input_shape, name="image")
    x = inputs if len(spec.input_shape) == 3 else layers.Reshape((height, width, 1))(inputs)

    def conv(x, f, k=3, s=1):
        x = layers.Conv2D(f, k, strides=s, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization(momentum=0.97)(x)
        return layers.ReLU()(x)

    def c2f(x, f):
        a, b = conv(x, f // 2, 1), conv(x, f // 2, 1)
        parts = [a, b]
        for _ in range(depth):
            b = layers.Add()([b, conv(conv(b, f // 2), f // 2)])
            parts.append(b)
        return conv(layers.Concatenate()(parts), f, 1)

    widths = [filters * min(2**i, 4) for i in range(8)]
    stride, level, features = 1, 0, []
    while stride < 4 * min_stride:
        x = conv(x, widths[level], s=2)
        stride, level = stride * 2, level + 1
        if stride >= min(4, min_stride):
            x = c2f(x, widths[level - 1])
        if stride >= min_stride:
            features.append(x)
    p3, p4, p5 = features
    f3, f4, f5 = (int(p.shape[-1]) for p in features)
    n4 = c2f(layers.Concatenate()([layers.UpSampling2D()(p5), p4]), f4)
    out3 = c2f(layers.Concatenate()([layers.UpSampling2D()(n4), p3]), f3)
    out4 = c2f(layers.Concatenate()([conv(out3, f3, s=2), n4]), f4)
    out5 = c2f(layers.Concatenate()([conv(out4, f4, s=2), p5]), f5)

    heads = []
    prior = -math.log((1 - 0.01) / 0.01)  # class scores start near 0.01
    for i, feature in enumerate((out3, out4, out5)):
        width_head = max(filters, 16)
        box = conv(conv(feature, width_head), width_head)
        heads.append(layers.Conv2D(4, 1, name=f"box_{i}")(box))
        cls = conv(conv(feature, width_head), width_head)
        bias = keras.initializers.Constant(prior)
        heads.append(layers.Conv2D(classes, 1, bias_initializer=bias, name=f"class_{i}")(cls))
    strides = (min_stride, 2 * min_stride, 4 * min_stride)
    outputs = DecodeBoxes((height, width), strides, reach, name="detections")(heads)
    model = keras.Model(inputs, outputs, name="yolo")
    loss = DetectionLoss((height, width), strides, reach=reach, box_weight=box_weight)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss)
    return model


def check_input(spec, min_stride):
    """``(H, W)`` of images divisible by ``4 * min_stride``, with classes; a ValueError saying what
    to change otherwise (the core reports it as the architecture's one-line error)."""
    shape = spec.input_shape
    if len(shape) not in (2, 3):
        raise ValueError(f"yolo needs image inputs (H, W[, C]); the dataset gives {shape}")
    if min_stride not in (2, 4, 8, 16):
        raise ValueError(f"yolo needs min_stride in 2, 4, 8, 16; got {min_stride}")
    if not spec.num_classes:
        raise ValueError("yolo needs class names (the dataset gives none)")
    step = 4 * min_stride
    if shape[0] % step or shape[1] % step:
        raise ValueError(
            f"yolo with min_stride={min_stride} needs height and width divisible by {step}; the images are "
            f"{shape[0]}x{shape[1]}: resize them or lower --hp min_stride"
        )
    return shape[0], shape[1]
