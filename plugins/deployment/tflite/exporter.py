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
from plugins.deployment.tflite.convert import convert
from plugins.deployment.tflite.options import INTEGER_VARIANTS, TFLiteOptions


def export(
    ctx,
    quantize="none",
    io="int8",
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
    """Convert ``ctx.model``; write ``model_<variant>.tflite``, ``labels.txt`` and ``model.json``.

    ``quantize``: ``int8`` is full-integer quantization calibrated on ``calibration_samples``
    training samples, with int8 input and output unless ``io=float``; ``int16x8`` keeps activations
    in 16 bits (int16 input/output unless ``io=float``); ``all`` writes every variant, and a
    comma-separated list (``quantize=none,int8``) the variants named. ``per_channel=false`` (int8,
    int16x8) quantizes each weight tensor with one scale instead of one per output channel: smaller
    files for models with many channels (each channel costs a float32 scale and an int64 zero point,
    ~12 bytes), at some accuracy; the file name gets ``-pertensor``.

    ``qat=native`` fine-tunes a fake-quantized copy of the model (``plugins.deployment.tflite.qat``) for ``qat_epochs``
    under the run's backend and converts it to int8 with its learned ranges
    (``model_int8-qat-native.tflite``); ``qat=tfmot`` does the same with TensorFlow Model
    Optimization through the tf_keras bridge (``model_int8-qat-tfmot.tflite``).

    ``prune=0.5`` fine-tunes ``prune_epochs`` while raising the kernels' sparsity to 50 %
    (``prune_method=native``: ``plugins.deployment.tflite.pruning``, any backend; ``tfmot``: through the bridge), then
    converts with ``quantize`` (``model_int8-pruned50.tflite``). ``clusters=16`` clusters each
    kernel to 16 values with tfmot (``cluster_epochs`` of fine-tuning). ``learning_rate`` (0: 1e-4
    for QAT and clustering, 1e-3 for pruning) and ``finetune_backend`` (default: the run's) apply to all fine-tuning.

    Each int8 and int16x8 file's model.json entry holds ``layer_errors``: per Keras layer, the
    quantized activations' error against float (relative RMSE, cosine, worst channel's SNR), worst
    first (``plugins.deployment.tflite.layer_errors``; ``layer_errors=false`` skips measuring them:
    ~0.8 s of CPU per file on the digits cnn, more on big models). ``keep_float=stem,mix`` leaves those Keras
    layers float and the rest int8 (``model_int8-mixed.tflite``); ``keep_float=auto`` chooses the
    fewest, greedily from the per-layer errors, checked end to end on the validation split until
    int8 is within 1 point of float (1 % of a lower-is-better metric), at most ``keep_float_max``.

    Only builtin ops are allowed unless ``allow_select_ops=true`` (which needs the Flex delegate on
    the device). model.json records each file's size, gzip size and what was done to the weights.
    """
    given = {name: value for name, value in locals().items() if name != "ctx"}  # first: the options only
    options = TFLiteOptions(**given).validate()
    _check_model(ctx.model)
    if options.qat != "none":
        return finetune.quantization_aware(ctx, options)
    if options.prune:
        model, suffix, extra, written = finetune.pruned(ctx, options)
    elif options.clusters:
        model, suffix, extra, written = finetune.clustered(ctx, options)
    else:
        model, suffix, extra, written = ctx.model, "", {}, []
    return convert_variants(ctx, model, options, suffix, extra) + written


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
    described = {**(extra or {}), **({} if options.per_channel else {"per_channel": False})}
    paths = []
    # One SavedModel for all the variants.
    with tempfile.TemporaryDirectory(prefix="kerastack-savedmodel-") as saved:
        for mode in options.variants:
            if mode == "int8" and options.keep_float:
                (flatbuffer, errors), batch = selective.mixed_int8(ctx, model, options, saved), None
            else:
                flatbuffer, batch = convert(model, mode, options, ctx.dataset, saved)
                errors = {}
                if mode in INTEGER_VARIANTS and batch is None and options.layer_errors:
                    errors = selective.variant_errors(model, mode, options, ctx.dataset, saved, flatbuffer)
            variant = variant_name(mode, options) + suffix
            written = write_files(ctx, flatbuffer, variant, mode, options, batch, {**described, **errors})
            paths += [p for p in written if p not in paths]
    return first_tflite(paths)
