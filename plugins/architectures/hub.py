"""KerasHub presets with a new head: ``hub_image_classifier`` and ``hub_text_classifier``.

``preset`` is a KerasHub preset name (downloaded once into KaggleHub's cache) or a folder written by
``save_to_preset``. The model is the preset's backbone plus a new head (Dropout + Dense) for the
dataset's classes. Images: the preset's image converter (its scale and offset) is baked into the
model as ``PixelPreprocessing``, so the model takes the dataset's pixels; the backbone's BatchNorm
layers stay in inference mode (not trainable). Text: the model takes token ids (0 = padding) and makes the backbone's
other inputs (padding mask, segment ids) inside, so it exports to LiteRT with builtin ops; the ids
must come from the preset's own tokenizer for its pretrained embeddings to mean anything.
"""

import os
from pathlib import Path

from core import KerastackError, UsageError, choices_text, did_you_mean, hookimpl


@hookimpl
def register_architectures(register):
    register(
        "hub_image_classifier",
        build_image,
        summary="a KerasHub image backbone (preset=NAME|DIR) + new head; the image converter baked in",
        tasks=("classification",),
    )
    register(
        "hub_text_classifier",
        build_text,
        summary="a KerasHub text backbone (preset=NAME|DIR, e.g. BERT) + new head; takes token ids",
        tasks=("classification",),
    )


def build_image(spec, preset="mobilenet_v3_small_050_imagenet", size=None, dropout=0.2, pixel_max=1.0):
    """``preset``: a KerasHub image preset or a preset folder; ``size``: the input size the backbone
    gets (default: the dataset's; resized inside); ``pixel_max``: a white pixel's value in the data."""
    import keras
    from keras import layers

    from plugins.architectures.pretrained import check_image_input, keep_batchnorm_statistics

    arch = "hub_image_classifier"
    height, width = check_image_input(arch, spec)
    keras_hub = _keras_hub()
    where = resolve_preset(arch, preset, keras_hub.models.ImageClassifier)
    backbone = _from_preset(arch, preset, keras_hub.models.Backbone)
    side = (height, width) if size is None else (int(size), int(size))

    inputs = keras.Input(spec.input_shape, name="image")
    x = inputs if len(spec.input_shape) == 3 else layers.Reshape((*spec.input_shape, 1))(inputs)
    if side != (height, width):
        x = layers.Resizing(*side, name="resize")(x)
    x = preset_pixels(x, keras_hub, where, preset, pixel_max)
    keep_batchnorm_statistics(backbone)
    # Also said in the graph: a reloaded KerasHub backbone has lost the flags above (it is rebuilt
    # from its arguments), and without this its SavedModel export normalized with batch statistics.
    x = backbone(x, training=False)
    if len(x.shape) == 4:
        x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(dropout, name="head_dropout")(x)
    outputs = layers.Dense(spec.num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=arch)


def build_text(spec, preset="bert_tiny_en_uncased", dropout=0.1):
    """``preset``: a KerasHub text preset (BERT family and the like) or a preset folder. The
    dataset's token ids must fit the backbone's vocabulary and sequence length."""
    import keras
    from keras import layers

    from plugins.architectures._layers.hub import FirstToken, TokenInputs

    arch = "hub_text_classifier"
    shape = tuple(spec.input_shape)
    if len(shape) != 1 or not spec.input_dtype.startswith("int"):
        raise UsageError(
            f"architecture {arch!r} takes token ids (one sequence of integers per sample); the dataset "
            f"gives {spec.input_dtype} of shape {shape}"
        )
    if spec.num_classes is None:
        raise UsageError(f"architecture {arch!r} classifies; the dataset has no classes")
    keras_hub = _keras_hub()
    resolve_preset(arch, preset, keras_hub.models.TextClassifier)
    backbone = _from_preset(arch, preset, keras_hub.models.Backbone)
    vocab = getattr(backbone, "vocabulary_size", None)
    if vocab is not None and spec.vocab_size is not None and spec.vocab_size > vocab:
        raise UsageError(
            f"architecture {arch!r}: the dataset's token ids go up to {spec.vocab_size - 1}, preset "
            f"{preset}'s vocabulary has {vocab}; tokenize with the preset's tokenizer"
        )
    longest = getattr(backbone, "max_sequence_length", None)
    if longest is not None and shape[0] > longest:
        raise UsageError(
            f"architecture {arch!r}: sequences of {shape[0]} tokens; preset {preset} takes at most {longest}"
        )
    names = list(backbone.input) if isinstance(backbone.input, dict) else ["token_ids"]
    unknown = sorted(set(names) - {"token_ids", "padding_mask", "segment_ids"})
    if unknown:
        raise UsageError(f"architecture {arch!r}: preset {preset}'s backbone takes {unknown}, which it cannot make")

    ids = keras.Input(shape, dtype="int32", name="token_ids")
    mask, segments = TokenInputs(name="token_inputs")(ids)
    given = {"token_ids": ids, "padding_mask": mask, "segment_ids": segments}
    out = backbone({k: given[k] for k in names} if isinstance(backbone.input, dict) else ids)
    if isinstance(out, dict):
        out = out.get("pooled_output", out.get("sequence_output"))
    if len(out.shape) == 3:
        out = FirstToken(name="first_token")(out)
    x = layers.Dropout(dropout)(out)
    outputs = layers.Dense(spec.num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(ids, outputs, name=arch)


def _keras_hub():
    try:
        import keras_hub
    except ImportError:
        raise KerastackError("the hub architectures need keras-hub: pip install 'kerastack[hub]'") from None
    return keras_hub


def resolve_preset(arch, preset, task):
    """The preset's folder or name; an unknown name (not a folder either) is a usage error with a
    did-you-mean among the presets of ``task`` (ImageClassifier, TextClassifier)."""
    path = Path(preset).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UsageError(
                f"architecture {arch!r}: preset folder {path} has no config.json (save_to_preset writes one)"
            )
        return str(path)
    from keras_hub.src.utils.preset_utils import BUILTIN_PRESETS

    if preset in BUILTIN_PRESETS or "://" in preset:
        return preset
    names = sorted(task.presets)
    raise UsageError(
        f"architecture {arch!r}: unknown preset {preset!r}{did_you_mean(preset, names)}; neither a folder nor "
        f"one of {len(names)} KerasHub presets: {choices_text(names[:12])}, ..."
    )


def _from_preset(arch, preset, cls):
    """``cls.from_preset(preset)``; a download that fails says what to fetch and where it goes."""
    if Path(preset).expanduser().is_dir():
        return cls.from_preset(str(Path(preset).expanduser()))
    try:
        return cls.from_preset(preset)
    except Exception as exc:
        from keras_hub.src.utils.preset_utils import BUILTIN_PRESETS

        handle = BUILTIN_PRESETS.get(preset, {}).get("kaggle_handle", preset)
        cache = os.environ.get("KAGGLEHUB_CACHE", "~/.cache/kagglehub")
        raise KerastackError(
            f"architecture {arch!r}: preset {preset!r}: could not download {handle} ({type(exc).__name__}; "
            f"offline?): fetch it with kagglehub.model_download({handle.removeprefix('kaggle://')!r}) into "
            f"KaggleHub's cache ({cache}), or save it to a folder and pass preset=DIR"
        ) from None


def preset_pixels(x, keras_hub, where, preset, pixel_max):
    """``x`` scaled as the preset's image converter scales pixels (``PixelPreprocessing``, baked
    into the model): ``pixel_max`` in the data is white; a preset without a converter: 0..1."""
    from plugins.architectures._layers.pixels import PixelPreprocessing

    converter = _optional(lambda: keras_hub.layers.ImageConverter.from_preset(where))
    return PixelPreprocessing(
        pixel_max=pixel_max,
        scale=_channels(getattr(converter, "scale", None), 1 / 255),
        offset=_channels(getattr(converter, "offset", None), 0.0),
        library=f"KerasHub {type(converter).__name__ if converter else 'no image converter'} of preset {preset}",
        name="pixel_preprocessing",
    )(x)


def _optional(load):
    try:
        return load()
    except Exception:  # noqa: BLE001 - a preset without an image converter: none baked in
        return None


def _channels(value, default):
    """Three per-channel numbers from a scalar, a list, or None (``default``)."""
    if value is None:
        value = default
    if isinstance(value, (int, float)):
        return [float(value)] * 3
    values = [float(v) for v in value]
    return values * 3 if len(values) == 1 else values
