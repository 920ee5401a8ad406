"""``tflite``: export to a LiteRT (TFLite) flatbuffer — float, post-training quantized, quantization-aware
trained, pruned or clustered — builtin ops by default.

Runs in a TensorFlow-backend process (the core starts one when the run was trained under JAX or
torch: a .keras file reloads there with the same predictions and converts cleanly). Fine-tuning
(``qat=native``, ``prune``) runs under the run's own backend, in a child process where that is not
TensorFlow; tfmot work (``qat=tfmot``, ``prune_method=tfmot``, ``clusters``) runs in a TensorFlow
process of its own, since importing tfmot switches a process to legacy Keras.
"""

import tempfile

from plugins.deployment.tflite import finetune, selective
from plugins.deployment.tflite.artifacts import first_tflite, variant_name, write_files
from plugins.deployment.tflite.boxes import is_detector
from plugins.deployment.tflite.convert import convert
from plugins.deployment.tflite.options import INTEGER_VARIANTS, TFLiteOptions


def export(
    ctx,
    quantize="none",
    io="auto",
    calibration_samples=300,
    allow_select_ops=False,
    seed=0,
    qat="none",
    qat_epochs=2,
    prune=0.0,
    prune_epochs=2,
    prune_method="native",
    clusters=0,
    cluster_epochs=1,
    learning_rate=0.0,
    finetune_backend="",
    per_channel=True,
    keep_float="",
    keep_float_max=4,
    layer_errors=True,
):
    """Convert ``ctx.model``; write ``model_<variant>.tflite``, ``labels.txt`` and ``model.json``;
    return the paths written, the .tflite files first.

    Each option is described on :class:`~plugins.deployment.tflite.options.TFLiteOptions` (the
    registry reads them, their defaults and types from this signature; a test keeps the two in step).
    Only builtin ops are allowed unless ``allow_select_ops=true``. model.json records each file's
    size, gzip size, what was done to the weights, the ops computing in float inside an integer
    file and, for a regression model, whether its integer output covers the training targets.
    """
    given = {name: value for name, value in locals().items() if name != "ctx"}  # first: the options only
    options = TFLiteOptions(**given).validate()
    _check_model(ctx.model)
    options = options.for_model(ctx.model, _task(ctx))  # io=auto resolved
    if options.qat != "none":
        return finetune.quantization_aware(ctx, options)
    if options.prune:
        model, suffix, extra, written = finetune.pruned(ctx, options)
    elif options.clusters:
        model, suffix, extra, written = finetune.clustered(ctx, options)
    else:
        model, suffix, extra, written = ctx.model, "", {}, []
    return convert_variants(ctx, model, options, suffix, extra) + written


def _task(ctx):
    from core import task_named

    return task_named(ctx.run.get("spec", {}).get("task") or "", optional=True)


def _check_model(model):
    from core import KerastackError

    if len(model.inputs) != 1:
        raise KerastackError(
            f"exporter 'tflite': the model has {len(model.inputs)} inputs; "
            "kerastack's LiteRT runner and verify take models with one input"
        )


def convert_variants(ctx, model, options, suffix="", extra=None):
    """Convert ``model`` to each variant ``options.quantize`` names and write the files, each name
    ending in ``suffix``, each model.json entry with ``extra``; the paths written, .tflite first."""
    options = selective.front_ends(model, options)
    described = {**(extra or {}), **({} if options.per_channel else {"per_channel": False})}
    paths = []
    # One SavedModel for all the variants.
    with tempfile.TemporaryDirectory(prefix="kerastack-savedmodel-") as saved:
        for mode in options.variants:
            flatbuffer, batch, found = _convert_variant(ctx, model, mode, options, saved)
            variant = variant_name(mode, options, mixed="mixed" in found) + suffix
            written = write_files(ctx, flatbuffer, variant, mode, options, batch, {**described, **found})
            paths += [p for p in written if p not in paths]
    return first_tflite(paths)


def _convert_variant(ctx, model, mode, options, saved):
    """``(flatbuffer, batch, model.json extra)`` of one variant: int8 with layers kept float
    (``keep_float``; the plain int8 model where ``auto`` keeps none, ``extra`` saying why), else the
    converter's, with its per-layer errors where it is an integer variant."""
    found = {}
    if mode == "int8" and selective.requested(options.keep_float):
        flatbuffer, found = selective.mixed_int8(ctx, model, options, saved)
        if flatbuffer is not None:
            return flatbuffer, 1 if is_detector(ctx.dataset) else None, found
    flatbuffer, batch = convert(model, mode, options, ctx.dataset, saved)
    if mode in INTEGER_VARIANTS and (batch is None or is_detector(ctx.dataset)) and options.layer_errors:
        found.update(selective.variant_errors(model, mode, options, ctx.dataset, saved, flatbuffer))
    return flatbuffer, batch, found
