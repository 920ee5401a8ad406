"""Pretrained image backbones from ``keras.applications`` with a new head for the dataset's classes.

``weights``: ``imagenet`` (downloaded once through Keras's own cache, ``KERAS_HOME/models``),
``none`` (random) or the path of a local weights file (``backbone.save_weights`` or a downloaded
Keras ``.h5``). ``size``: the backbone's input size (default: the dataset's); the model resizes
inside. The library's own preprocessing is part of the model (``PixelPreprocessing`` and the
backbone's own layers), so it takes the dataset's pixels, and the .tflite too. With pretrained
weights the backbone's BatchNorm layers are not trainable, so they run in inference mode, as
keras.io's fine-tuning recipe has it: ``--freeze backbone`` trains the head, then fine-tuning
(``--fine-tune-after N`` or a second run ``--init-from RUN --freeze none``) keeps the pretrained
statistics.
"""

import functools
from pathlib import Path

from core import KerastackError, UsageError, hookimpl

MIN_SIZE = 32  # keras.applications refuses smaller inputs
IMAGENET_SIZES = {"mobilenet_v2": (96, 128, 160, 192, 224)}  # others: 224 (any size >= 32 loads)
_MEAN_BGR = (103.939, 116.779, 123.68)  # keras.applications.imagenet_utils, mode "caffe"

# name: (keras.applications function, takes alpha, keyword arguments, the library's preprocessing
# done by PixelPreprocessing (scale, offset, bgr, description), the steps the backbone does itself).
BACKBONES = {
    "mobilenet_v2": (
        "MobileNetV2",
        True,
        {},
        (1 / 127.5, -1.0, False, "mobilenet_v2.preprocess_input: x / 127.5 - 1"),
        "",
    ),
    "mobilenet_v3_small": (
        "MobileNetV3Small",
        True,
        {"include_preprocessing": True},
        (1.0, 0.0, False, "pixels in [0, 255]"),
        "Rescaling(1/127.5, offset=-1)",
    ),
    "mobilenet_v3_large": (
        "MobileNetV3Large",
        True,
        {"include_preprocessing": True},
        (1.0, 0.0, False, "pixels in [0, 255]"),
        "Rescaling(1/127.5, offset=-1)",
    ),
    "efficientnet_b0": (
        "EfficientNetB0",
        False,
        {},
        (1.0, 0.0, False, "pixels in [0, 255]"),
        "Rescaling(1/255), Normalization (ImageNet mean and variance)",
    ),
    "efficientnet_v2_b0": (
        "EfficientNetV2B0",
        False,
        {"include_preprocessing": True},
        (1.0, 0.0, False, "pixels in [0, 255]"),
        "Rescaling(1/128, offset=-1)",
    ),
    "resnet50": (
        "ResNet50",
        False,
        {},
        (1.0, None, True, "resnet50.preprocess_input (caffe): RGB to BGR, minus the ImageNet mean"),
        "",
    ),
    "convnext_tiny": (
        "ConvNeXtTiny",
        False,
        {"include_preprocessing": True},
        (1.0, 0.0, False, "pixels in [0, 255]"),
        "Normalization (ImageNet mean and std)",
    ),
}


@hookimpl
def register_architectures(register):
    for name, (function, alpha, *_rest) in BACKBONES.items():
        kind = _build_v3 if name.startswith("mobilenet_v3") else _build_alpha if alpha else _build_plain
        build = functools.partial(kind, name)
        register(
            name,
            build,
            summary=f"keras.applications.{function} (weights imagenet|none|PATH), new head; resizes to size",
            tasks=("classification",),
        )


def _build_alpha(arch, spec, weights="imagenet", size=None, dropout=0.2, alpha=1.0, pixel_max=1.0):
    """``alpha``: the width multiplier (ImageNet weights exist for MobileNetV2 0.35–1.4, V3 0.75 and 1.0)."""
    return build(arch, spec, weights=weights, size=size, dropout=dropout, pixel_max=pixel_max, alpha=alpha)


def _build_v3(arch, spec, weights="imagenet", size=None, dropout=0.2, alpha=1.0, minimalistic=False, pixel_max=1.0):
    """``alpha``: the width multiplier (ImageNet weights: 0.75 and 1.0); ``minimalistic``: no
    squeeze-excite, no hard-swish, 3x3 kernels only (the variant made to quantize well)."""
    return build(
        arch,
        spec,
        weights=weights,
        size=size,
        dropout=dropout,
        pixel_max=pixel_max,
        alpha=alpha,
        minimalistic=minimalistic,
    )


def _build_plain(arch, spec, weights="imagenet", size=None, dropout=0.2, pixel_max=1.0):
    """``weights``: imagenet, none or a weights file; ``size``: input size (default: the dataset's);
    ``pixel_max``: the value of a white pixel in the dataset's images (1.0 for kerastack's)."""
    return build(arch, spec, weights=weights, size=size, dropout=dropout, pixel_max=pixel_max)


def build(arch, spec, weights="imagenet", size=None, dropout=0.2, pixel_max=1.0, **options):
    """The model: image (dataset size) → resize → PixelPreprocessing → backbone (pooled) → Dropout →
    Dense softmax over the dataset's classes."""
    import keras
    from keras import layers

    from plugins.architectures._layers.pixels import PixelPreprocessing

    height, width = check_image_input(arch, spec)
    side = (height, width) if size is None else (int(size), int(size))
    check_size(arch, side, size)
    path = weights_path(arch, weights)
    function, _, kwargs, (scale, offset, bgr, library), inside = BACKBONES[arch]
    backbone = _backbone(
        getattr(keras.applications, function),
        arch,
        input_shape=(*side, 3),
        include_top=False,
        weights="imagenet" if weights == "imagenet" else None,
        pooling="avg",
        **kwargs,
        **options,
    )
    backbone.name = "backbone"  # not at construction: EfficientNetV2 reads its block table by name
    if path is not None:
        load_weights_file(backbone, arch, path)

    inputs = keras.Input(spec.input_shape, name="image")
    x = inputs if len(spec.input_shape) == 3 else layers.Reshape((*spec.input_shape, 1))(inputs)
    if side != (height, width):
        x = layers.Resizing(*side, name="resize")(x)
    x = PixelPreprocessing(
        pixel_max=pixel_max,
        scale=(scale,) * 3,
        offset=[-m for m in _MEAN_BGR] if offset is None else (offset,) * 3,
        bgr=bgr,
        library=library,
        inside=inside,
        name="pixel_preprocessing",
    )(x)
    if weights != "none":
        keep_batchnorm_statistics(backbone)
    x = backbone(x)
    x = layers.Dropout(dropout, name="head_dropout")(x)
    outputs = layers.Dense(spec.num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=arch)


def keep_batchnorm_statistics(backbone):
    """Pretrained BatchNorm layers stay in inference mode with their statistics, whatever else
    trains (keras.io's fine-tuning recipe): a BatchNormalization layer that is not trainable runs
    in inference mode. Calling the backbone with ``training=False`` is not enough in Keras 3: a
    functional model passes ``fit``'s ``training=True`` on to every layer, overriding it."""
    import keras

    for layer in backbone._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False


def check_image_input(arch, spec):
    """(height, width) of the dataset's images; a usage error for anything else (text, tables)."""
    shape = tuple(spec.input_shape)
    if spec.input_dtype.startswith("int") or len(shape) not in (2, 3) or (len(shape) == 3 and shape[-1] not in (1, 3)):
        kind = "token ids" if spec.input_dtype.startswith("int") else f"{spec.input_dtype} arrays"
        raise UsageError(
            f"architecture {arch!r} takes images (height, width, 1 or 3 channels); the dataset gives {kind} "
            f"of shape {shape}: for text use hub_text_classifier or transformer"
        )
    if spec.num_classes is None:
        raise UsageError(f"architecture {arch!r} classifies; the dataset has no classes")
    return shape[0], shape[1]


def check_size(arch, side, size):
    """Refuse an input smaller than keras.applications takes, naming the sizes it takes."""
    if min(side) >= MIN_SIZE:
        return
    imagenet = ", ".join(map(str, IMAGENET_SIZES.get(arch, (224,))))
    what = f"size={size}" if size is not None else f"the dataset's images ({side[0]}x{side[1]})"
    raise UsageError(
        f"architecture {arch!r}: input size {side[0]}x{side[1]} ({what}) is too small; {arch} takes sizes of "
        f"{MIN_SIZE} or more (its ImageNet weights were trained at {imagenet}): set --hp size=N, the model "
        "resizes inside"
    )


def weights_path(arch, weights):
    """None for ``imagenet`` and ``none``; else the weights file, which must exist."""
    if weights in ("imagenet", "none"):
        return None
    path = Path(weights).expanduser()
    if not path.is_file():
        raise UsageError(
            f"architecture {arch!r}: weights={weights!r} is neither imagenet, none, nor a weights file (no file {path})"
        )
    return path


def _backbone(function, arch, **kwargs):
    """``function(**kwargs)``; a download that fails says which file to fetch and where to put it."""
    from keras.src.utils import file_utils

    fetched = []
    get_file = file_utils.get_file

    def recording(fname=None, origin=None, *args, **kw):
        fetched.append((fname, origin, kw.get("cache_subdir", "datasets"), kw.get("cache_dir")))
        return get_file(fname, origin, *args, **kw)

    file_utils.get_file = recording
    try:
        return function(**kwargs)
    except ValueError as exc:  # a size or alpha keras.applications refuses
        if fetched:
            raise
        raise UsageError(
            f"architecture {arch!r}: keras.applications refused it: {' '.join(str(exc).split())}"
        ) from None
    except Exception as exc:
        if not fetched:
            raise
        fname, origin, subdir, cache_dir = fetched[-1]
        target = Path(cache_dir or _keras_home()) / subdir / (fname or Path(origin).name)
        raise KerastackError(
            f"architecture {arch!r}: weights=imagenet: could not download {origin} "
            f"({type(exc).__name__}; offline?): fetch that file and put it at {target} "
            "(Keras's cache, KERAS_HOME), or pass weights=PATH"
        ) from None
    finally:
        file_utils.get_file = get_file


def _keras_home():
    from keras.src.backend import config

    return config.keras_home()


def load_weights_file(backbone, arch, path):
    """Load a weights file into ``backbone`` after checking that every layer's shapes fit."""
    mismatch = weights_mismatch(backbone, path)
    if mismatch:
        raise UsageError(f"architecture {arch!r}: weights file {path} is not a {arch} backbone's: {mismatch}")
    try:
        backbone.load_weights(str(path))
    except Exception as exc:  # noqa: BLE001 - any reader error: one line naming the file
        raise UsageError(
            f"architecture {arch!r}: cannot load weights file {path}: {' '.join(str(exc).split())}"
        ) from None


def weights_mismatch(model, path):
    """A description of the first layer whose weights in the file (Keras 3 ``.weights.h5`` or a
    legacy ``.h5``) differ in count or shape from the model's, or None where all fit."""
    import h5py

    try:
        store = h5py.File(path, "r")
    except OSError as exc:
        return f"not an HDF5 weights file ({' '.join(str(exc).split())})"
    with store:
        keras3 = "layers" in store
        if keras3:
            found = _keras3_weights(model, store["layers"])
        else:
            found = _legacy_weights(model, store.get("model_weights", store))
    owned = [layer for layer in model.layers if layer.weights]
    for i, layer in enumerate(owned):
        want = [tuple(w.shape) for w in layer.weights]
        want = want if _is_leaf(layer) or not keras3 else sorted(want)
        got = found[i] if i < len(found) else None
        if got is None:
            return f"it has no weights for layer {layer.name!r} ({type(layer).__name__} {_shapes(want)})"
        if got[1] != want:
            return (
                f"layer {layer.name!r} ({type(layer).__name__}) has weights {_shapes(want)}, "
                f"the file's {got[0]!r} has {_shapes(got[1])}"
            )
    if len(found) > len(owned):
        return f"it has {len(found) - len(owned)} more layers with weights than the model ({len(owned)})"
    return None


def _shapes(shapes):
    return " ".join("x".join(map(str, s)) or "scalar" for s in shapes) or "none"


def _keras3_weights(model, group):
    """[(key, shapes)] of the file, in the order of the model's layers that own weights: Keras 3
    names each layer by its class and its rank among the layers of that class. A layer holding
    others (ConvNeXt's Sequential stem) is compared by all the shapes it holds, sorted."""
    from keras.src.utils import naming

    used, found = {}, []
    for layer in model.layers:
        base = naming.to_snake_case(type(layer).__name__)
        key = base if base not in used else f"{base}_{used[base] + 1}"
        used[base] = used.get(base, -1) + 1
        if not layer.weights:
            continue
        stored = group.get(key)
        if stored is None:
            found.append(None)
        elif _is_leaf(layer):
            vars_ = stored.get("vars", {})
            found.append((key, [tuple(vars_[str(i)].shape) for i in range(len(vars_))]))
        else:
            found.append((key, sorted(_dataset_shapes(stored))))
    return found


def _dataset_shapes(group):
    shapes = []
    group.visititems(lambda _, item: shapes.append(tuple(item.shape)) if hasattr(item, "shape") else None)
    return shapes


def _is_leaf(layer):
    return not any(sub.weights for sub in layer._flatten_layers(include_self=False, recursive=False))


def _legacy_weights(model, group):
    """[(layer name, shapes)] of a legacy Keras .h5 file's layers that own weights, in order."""
    names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs.get("layer_names", [])]
    found = []
    for name in names:
        weight_names = group[name].attrs.get("weight_names", [])
        if len(weight_names):
            found.append(
                (name, [tuple(group[name][w.decode() if isinstance(w, bytes) else w].shape) for w in weight_names])
            )
    return found
