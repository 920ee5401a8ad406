"""KerasHub's segmentation models with a new head for the dataset's classes: ``deeplab_v3``
(DeepLabV3+: an image encoder, atrous spatial pyramid pooling, a low-level-feature decoder) and
``segformer`` (a MixTransformer encoder and an all-MLP decoder).

``preset``: ``none`` builds a small randomly initialized model (offline; trained from scratch), a
KerasHub preset name (``deeplab_v3_plus_resnet50_pascalvoc``, ``segformer_b0_ade20k_512``,
downloaded once into KaggleHub's cache) or a folder written by ``save_to_preset``, whose backbone
and weights are used. The head is new: a 1x1 convolution to the dataset's classes at the input's
size, softmax per pixel. A preset's image converter (scale and offset) is baked into the model as
``PixelPreprocessing``, so the model takes the dataset's pixels; grey images become RGB there.
"""

from core import UsageError, hookimpl

SMALL = {  # preset=none: small enough to train on a CPU in seconds, same structure as the presets
    "deeplab_v3": {"levels": 4, "filters": 64, "dilation_rates": (2, 4), "projection_filters": 8},
    "segformer": {"hidden_dims": (8, 16), "heads": (1, 2), "sr_ratios": (2, 1), "projection_filters": 16},
}


@hookimpl
def register_architectures(register):
    register(
        "deeplab_v3",
        build_deeplab_v3,
        summary="KerasHub DeepLabV3+ (preset=none|NAME|DIR) with a new per-pixel head",
        tasks=("segmentation",),
    )
    register(
        "segformer",
        build_segformer,
        summary="KerasHub SegFormer, MixTransformer encoder (preset=none|NAME|DIR) with a new per-pixel head",
        tasks=("segmentation",),
    )


def build_deeplab_v3(spec, preset="none", pixel_max=1.0):
    """``preset=none``: a ResNet (basic blocks) encoder, pyramid pooling on its 1/16 features, the
    decoder joined at 1/4: H and W must be divisible by 16. ``pixel_max``: a white pixel's value."""
    return _build("deeplab_v3", spec, preset, pixel_max)


def build_segformer(spec, preset="none", pixel_max=1.0):
    """``preset=none``: a 2-stage MixTransformer at 1/2 and 1/4 of the input: H and W divisible by 4.
    ``pixel_max``: a white pixel's value in the data."""
    return _build("segformer", spec, preset, pixel_max)


def _build(arch, spec, preset, pixel_max):
    import keras
    from keras import layers

    from plugins.architectures.hub import _keras_hub
    from plugins.architectures.pretrained import check_image_input

    height, width = check_image_input(arch, spec)
    if not spec.num_classes or spec.num_classes < 2:
        raise UsageError(f"architecture {arch!r} segments into classes; the dataset gives {spec.num_classes}")
    keras_hub = _keras_hub()
    inputs = keras.Input(spec.input_shape, name="image")
    x = inputs if len(spec.input_shape) == 3 else layers.Reshape((height, width, 1))(inputs)
    if preset == "none":
        backbone = _small(arch, keras_hub, (height, width, x.shape[-1]))
    else:
        backbone, x = _pretrained(arch, keras_hub, preset, x, pixel_max)
    # A preset's BatchNorm keeps its statistics (as hub.py's classifiers), said in the graph too:
    # a KerasHub backbone nested in a model otherwise exports to a SavedModel that normalizes with
    # batch statistics. preset=none learns its statistics, so its export has that fault (findings.md).
    x = backbone(x) if preset == "none" else backbone(x, training=False)
    x = layers.Conv2D(spec.num_classes, 1, name="head")(x)
    if tuple(x.shape[1:3]) != (height, width):
        x = layers.Resizing(height, width, interpolation="bilinear", name="to_input_size")(x)
    outputs = layers.Softmax(name="probabilities")(x)
    model = keras.Model(inputs, outputs, name=arch)
    return model


def _small(arch, keras_hub, shape):
    """The randomly initialized backbone of ``preset=none`` (``SMALL``) for images of ``shape``."""
    small = SMALL[arch]
    step = 16 if arch == "deeplab_v3" else 4
    if shape[0] % step or shape[1] % step:
        raise ValueError(
            f"{arch} with preset=none needs height and width divisible by {step}; the images are "
            f"{shape[0]}x{shape[1]}: resize them (e.g. --data-opt size={-(-max(shape[:2]) // step) * step})"
        )
    if arch == "deeplab_v3":
        n, filters = small["levels"], small["filters"]
        encoder = keras_hub.models.ResNetBackbone(
            input_conv_filters=[filters],
            input_conv_kernel_sizes=[3],
            stackwise_num_filters=[filters] * n,
            stackwise_num_blocks=[1] * n,
            stackwise_num_strides=[1] + [2] * (n - 1),
            block_type="basic_block",
            use_pre_activation=False,
            image_shape=shape,
        )
        return keras_hub.models.DeepLabV3Backbone(
            image_encoder=encoder,
            spatial_pyramid_pooling_key="P4",
            upsampling_size=4,
            dilation_rates=list(small["dilation_rates"]),
            low_level_feature_key="P2",
            projection_filters=small["projection_filters"],
            image_shape=shape,
        )
    stages = len(small["hidden_dims"])
    encoder = keras_hub.models.MiTBackbone(
        image_shape=shape,
        num_layers=stages,
        hidden_dims=list(small["hidden_dims"]),
        layerwise_depths=[1] * stages,
        layerwise_num_heads=list(small["heads"]),
        layerwise_sr_ratios=list(small["sr_ratios"]),
        layerwise_patch_sizes=[3] * stages,
        layerwise_strides=[2] * stages,
        max_drop_path_rate=0.0,
    )
    return keras_hub.models.SegFormerBackbone(image_encoder=encoder, projection_filters=small["projection_filters"])


def _pretrained(arch, keras_hub, preset, x, pixel_max):
    """``(backbone, x)``: the preset's backbone (weights included) and the images ``x`` made into
    what it expects by its image converter (baked in as ``PixelPreprocessing``)."""
    from plugins.architectures.hub import _from_preset, preset_pixels, resolve_preset
    from plugins.architectures.pretrained import keep_batchnorm_statistics

    task = (
        keras_hub.models.DeepLabV3ImageSegmenter if arch == "deeplab_v3" else keras_hub.models.SegFormerImageSegmenter
    )
    where = resolve_preset(arch, preset, task)
    backbone = _from_preset(arch, preset, keras_hub.models.Backbone)
    x = preset_pixels(x, keras_hub, where, preset, pixel_max)
    keep_batchnorm_statistics(backbone)
    return backbone, x
