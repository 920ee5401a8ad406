"""``tflite``: export to a LiteRT (TFLite) flatbuffer — float, post-training quantized, quantization-aware
trained, pruned or clustered — builtin ops by default.

Runs in a TensorFlow-backend process (the core starts one when the run was trained under JAX or
torch: a .keras file reloads there with the same predictions and converts cleanly). Fine-tuning
(``qat=native``, ``prune``) runs under the run's own backend, in a child process where that is not
TensorFlow; tfmot work (``qat=tfmot``, ``prune_method=tfmot``, ``clusters``) runs in a TensorFlow
process of its own, since importing tfmot switches a process to legacy Keras.
"""

import re
import tempfile
from pathlib import Path

VARIANTS = ("none", "float16", "dynamic", "int8", "int16x8")
QUANTIZE = VARIANTS + ("all",)
IO = ("int8", "float")
QAT = ("none", "native", "tfmot")
PRUNE_METHODS = ("native", "tfmot")


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
    for QAT, 1e-3 otherwise) and ``finetune_backend`` (default: the run's) apply to all fine-tuning.

    Only builtin ops are allowed unless ``allow_select_ops=true`` (which needs the Flex delegate on
    the device). model.json records each file's size, gzip size and what was done to the weights.
    """
    from core import KerastackError, UsageError
    from plugins.deployment.tflite import finetune

    _check_options(
        quantize,
        io,
        calibration_samples,
        qat,
        qat_epochs,
        prune,
        prune_epochs,
        prune_method,
        clusters,
        cluster_epochs,
        learning_rate,
        finetune_backend,
    )
    if not per_channel and not set(variants(quantize)) <= {"int8", "int16x8"}:
        # Measured with TensorFlow 2.21: per-tensor dynamic-range MobileNet fell to chance (0.33).
        raise UsageError(
            f"exporter 'tflite': per_channel=false applies to quantize=int8 or int16x8 "
            f"(per-tensor dynamic-range weights ruin depthwise convolutions); got "
            f"quantize={quantize!r}"
        )
    if len(ctx.model.inputs) != 1:
        raise KerastackError(
            f"exporter 'tflite': the model has {len(ctx.model.inputs)} inputs; "
            "kerastack's LiteRT runner and verify take models with one input"
        )
    tuning = dict(
        learning_rate=learning_rate, backend=finetune_backend or ctx.run.get("training", {}).get("backend"), seed=seed
    )
    if qat != "none":
        return finetune.quantization_aware(ctx, qat, qat_epochs, io, allow_select_ops, tuning)

    model, suffix, extra, written = ctx.model, "", {}, []
    if prune:
        model, suffix, extra, written = finetune.pruned(ctx, prune, prune_epochs, prune_method, tuning)
    elif clusters:
        model, suffix, extra, written = finetune.clustered(ctx, clusters, cluster_epochs, tuning)
    paths = []
    with tempfile.TemporaryDirectory(prefix="kerastack-savedmodel-") as saved:
        for mode in variants(quantize):
            flatbuffer, batch = convert(
                model,
                mode,
                io,
                ctx.dataset,
                calibration_samples,
                allow_select_ops,
                seed,
                saved,
                per_channel=per_channel,
            )
            variant = variant_name(mode, io) + ("" if per_channel or mode in ("none", "float16") else "-pertensor")
            variant += suffix
            described = extra if per_channel else {**extra, "per_channel": False}
            paths += [
                p
                for p in write_files(ctx, flatbuffer, variant, mode, io, allow_select_ops, batch, described)
                if p not in paths
            ]
    return _first_tflite(paths) + written


def variants(quantize):
    """The variants ``quantize`` names: one, a comma-separated list, or ``all``."""
    return VARIANTS if quantize == "all" else tuple(dict.fromkeys(q.strip() for q in quantize.split(",")))


def _check_options(
    quantize,
    io,
    calibration_samples,
    qat,
    qat_epochs,
    prune,
    prune_epochs,
    prune_method,
    clusters,
    cluster_epochs,
    learning_rate,
    finetune_backend,
):
    from core import BACKENDS, UsageError

    def bad(text):
        raise UsageError(f"exporter 'tflite': {text}")

    if quantize != "all" and not set(variants(quantize)) <= set(VARIANTS):
        bad(f"quantize={quantize!r} is not one of {', '.join(QUANTIZE)} (or a comma-separated list)")
    if io not in IO:
        bad(f"io={io!r} is not one of {', '.join(IO)}")
    if calibration_samples < 1:
        bad(f"calibration_samples must be positive, got {calibration_samples}")
    if qat not in QAT:
        bad(f"qat={qat!r} is not one of {', '.join(QAT)}")
    if prune_method not in PRUNE_METHODS:
        bad(f"prune_method={prune_method!r} is not one of {', '.join(PRUNE_METHODS)}")
    if not 0 <= prune < 1:
        bad(f"prune is the target sparsity, a fraction in [0, 1); got {prune}")
    if clusters < 0 or clusters == 1:
        bad(f"clusters must be 0 (off) or at least 2, got {clusters}")
    for name, value in (("qat_epochs", qat_epochs), ("prune_epochs", prune_epochs), ("cluster_epochs", cluster_epochs)):
        if value < 0:
            bad(f"{name} must be 0 or more, got {value}")
    if learning_rate < 0:
        bad(f"learning_rate must be positive (0: the default), got {learning_rate}")
    if finetune_backend and finetune_backend not in BACKENDS:
        bad(f"finetune_backend={finetune_backend!r} is not one of {', '.join(BACKENDS)}")
    if qat != "none" and quantize not in ("none", "int8"):
        bad(f"qat={qat} makes an int8 model; quantize={quantize!r} does not apply (leave it out)")
    if sum(map(bool, (qat != "none", prune, clusters))) > 1:
        bad("qat, prune and clusters each fine-tune the model; choose one of them per export")


def variant_name(quantize, io):
    name = {"none": "float32"}.get(quantize, quantize)
    return name + ("-floatio" if quantize in ("int8", "int16x8") and io == "float" else "")


def _first_tflite(paths):
    """The .tflite files first (in the order written), then the sidecars."""
    return [p for p in paths if p.suffix == ".tflite"] + [p for p in paths if p.suffix != ".tflite"]


def convert(model, quantize, io, dataset, calibration_samples, allow_select_ops, seed, saved=None, *, per_channel=True):
    """The flatbuffer and the batch size it was fixed to (None: dynamic batch).

    ``quantize="qat"`` converts a fake-quantized model to int8 with the ranges it learned.
    ``saved``: a folder where the SavedModel the converter reads is kept, so that converting the
    same model again (another variant) skips writing it anew; default a temporary folder.
    """
    from core import KerastackError

    if saved is None:
        with tempfile.TemporaryDirectory(prefix="kerastack-savedmodel-") as saved:
            return convert(
                model,
                quantize,
                io,
                dataset,
                calibration_samples,
                allow_select_ops,
                seed,
                saved,
                per_channel=per_channel,
            )
    try:
        return _convert(
            model, None, quantize, io, dataset, calibration_samples, allow_select_ops, seed, saved, per_channel
        ), None
    except _NeedsSelectOps as exc:
        # Recurrent layers with a dynamic batch lower to TensorList ops, which only the Flex delegate
        # runs; with a fixed batch of 1 they become LiteRT's fused sequence kernels.
        if not any("TensorList" in op for op in exc.ops):
            raise KerastackError(exc.message) from None
        if quantize in ("int8", "int16x8", "qat"):
            # Measured with TensorFlow 2.21: calibrating the batch-1 WHILE loop crashes the process.
            raise KerastackError(
                f"exporter 'tflite': quantize={quantize} cannot convert a recurrent layer that runs as a "
                "loop (TensorList ops); build it with unroll=True (e.g. --hp unroll=true), or export "
                "float32/float16/dynamic"
            ) from None
        try:
            flatbuffer = _convert(
                model, 1, quantize, io, dataset, calibration_samples, allow_select_ops, seed, saved, per_channel
            )
        except _NeedsSelectOps as again:
            raise KerastackError(again.message) from None
        return flatbuffer, 1


class _NeedsSelectOps(Exception):
    def __init__(self, ops):
        self.ops = ops
        self.message = (
            f"exporter 'tflite': LiteRT builtin ops cannot run TensorFlow op(s) {', '.join(ops)}; "
            "change the model, or pass --opt allow_select_ops=true (the device then needs the Flex "
            "delegate)"
        )


def _convert(model, batch, quantize, io, dataset, calibration_samples, allow_select_ops, seed, saved, per_channel=True):
    import tensorflow as tf

    (tensor,) = model.inputs
    # Through a SavedModel written by Keras's own exporter: it freezes the variables (converting a
    # tf.function over a Keras 3 model directly leaves READ_VARIABLE ops with no values). One per
    # batch size, kept in ``saved`` for the next variant of the same model.
    path = Path(saved) / f"batch-{batch or 'any'}"
    if not (path / "saved_model.pb").exists():
        signature = [tf.TensorSpec([batch, *tensor.shape[1:]], tensor.dtype)]
        model.export(str(path), format="tf_saved_model", verbose=False, input_signature=signature)
    converter = tf.lite.TFLiteConverter.from_saved_model(str(path))
    configure(
        converter,
        quantize,
        io,
        tf.as_dtype(tensor.dtype).is_floating,
        allow_select_ops,
        lambda: _calibration(model, dataset, calibration_samples, seed, batch),
    )
    converter._experimental_disable_per_channel = not per_channel  # TF 2.21's (private) switch
    return run_converter(converter, quantize, allow_select_ops)


def configure(converter, quantize, io, float_inputs, allow_select_ops, calibration):
    """Set up ``converter`` for ``quantize`` (a variant, or ``"qat"``: int8 from fake-quant ranges)."""
    import tensorflow as tf

    ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantize in ("int8", "int16x8"):
        ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS_INT8
            if quantize == "int8"
            else tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        ]
        converter.representative_dataset = calibration()
    if quantize in ("int8", "int16x8", "qat") and io == "int8":
        integer = tf.int16 if quantize == "int16x8" else tf.int8
        if float_inputs:  # token ids stay integers
            converter.inference_input_type = integer
        converter.inference_output_type = integer
    if allow_select_ops:
        ops.append(tf.lite.OpsSet.SELECT_TF_OPS)
    # QAT: the default builtins (asking for TFLITE_BUILTINS_INT8 demands a representative dataset).
    converter.target_spec.supported_ops = ops


def run_converter(converter, quantize, allow_select_ops):
    from core import KerastackError, one_line

    try:
        return converter.convert()
    except Exception as exc:
        message = str(exc)
        # The converter names them "tf.Op(...)" in its listing, or "'tf.Op' op ..." in an error.
        missing = sorted(set(re.findall(r"\btf\.(\w+)(?:\(|' op)", message)))
        if missing and not allow_select_ops:
            raise _NeedsSelectOps(missing) from exc
        raise KerastackError(f"exporter 'tflite': conversion ({quantize}) failed: {one_line(exc, first=True)}") from exc


def _calibration(model, dataset, samples, seed, batch):
    import numpy as np

    from core import as_arrays, input_fits

    dtype = model.inputs[0].dtype
    x, _ = as_arrays(dataset.train, limit=samples * 4)
    if not input_fits(model.input_shape[1:], x.shape[1:]):
        # The deployed part takes something else than the data (a generator's latent vectors, a
        # denoiser's noisy image): calibrate on what it sees at run time, standard-normal noise.
        x = np.random.default_rng(seed).normal(size=(samples, *model.input_shape[1:]))
    chosen = np.random.default_rng(seed).permutation(len(x))[:samples]

    def generate():
        for i in chosen:
            yield [np.asarray(x[i : i + 1], dtype=dtype)]

    return generate


def write_files(ctx, flatbuffer, variant, quantize, io, allow_select_ops, batch, extra=None):
    """Write ``model_<variant>.tflite`` and its model.json entry (plus ``extra``), and labels.txt."""
    import gzip

    from core import KerastackError, atomic_path, read_json, write_json, write_text
    from plugins.deployment.tflite.metadata import embed_run_metadata
    from tflite.runner import TFLiteModel

    path = ctx.out_dir / f"model_{variant}.tflite"
    with atomic_path(path) as tmp:
        tmp.write_bytes(flatbuffer)
        model = TFLiteModel(tmp)
        flex = sorted({op for op in model.op_names() if op.startswith("Flex") or op == "CUSTOM"})
        if flex and not allow_select_ops:
            raise KerastackError(f"exporter 'tflite': the converted model needs non-builtin ops {flex}")
        integer = quantize in ("int8", "int16x8")
        entry = {
            "quantize": quantize,
            "io": io if integer else "float",
            "batch": batch,
            "size_bytes": len(flatbuffer),
            "gzip_bytes": len(gzip.compress(flatbuffer, 9, mtime=0)),
            "ops": sorted(set(model.op_names())),
            "input": _tensor(model.input_details),
            "output": _tensor(model.output_details),
        }
        entry.update(extra or {})
    spec = ctx.run.get("spec", {})
    written = [path]
    meta_path = ctx.out_dir / "model.json"
    meta = read_json(meta_path, "metadata file") if meta_path.exists() else {}
    meta.update(
        {
            "format": "kerastack-tflite/1",
            "task": spec.get("task"),
            "input_shape": spec.get("input_shape"),
            "class_names": spec.get("class_names"),
            "source_run": str(ctx.run_dir.resolve()),
            "architecture": ctx.run.get("architecture", {}).get("name"),
            "dataset": ctx.run.get("dataset", {}).get("name"),
            "trained_backend": ctx.run.get("training", {}).get("backend"),
        }
    )
    # What a device needs to prepare inputs like the training data: a text dataset's vocabulary,
    # a table's column encodings.
    for key in ("vocabulary", "preprocessing"):
        if getattr(ctx.dataset, key, None) is not None:
            meta[key] = getattr(ctx.dataset, key)
    meta.setdefault("files", {})[path.name] = entry
    written.append(write_json(meta_path, meta))
    # The same description inside the .tflite (one file is a whole deployment); sizes updated.
    embed_run_metadata(path, meta)
    if spec.get("class_names"):
        written.append(write_text(ctx.out_dir / "labels.txt", "\n".join(spec["class_names"]) + "\n"))
    return written


def _tensor(details):
    scale, zero_point = details.get("quantization", (0.0, 0))
    return {
        "name": details["name"],
        "shape": [int(d) for d in details.get("shape_signature", details["shape"])],
        "dtype": details["dtype"].__name__ if hasattr(details["dtype"], "__name__") else str(details["dtype"]),
        "quantization": {"scale": float(scale), "zero_point": int(zero_point)},
    }
