"""``tflite``: export to a LiteRT (TFLite) flatbuffer, float or quantized, builtin ops by default.

Runs in a TensorFlow-backend process (the core starts one when the run was trained under JAX or
torch: a .keras file reloads there with the same predictions and converts cleanly).
"""

import re
import tempfile

from core import hookimpl

QUANTIZE = ("none", "float16", "dynamic", "int8")
IO = ("int8", "float")


@hookimpl
def register_exporters(register):
    register("tflite", export, backend="tensorflow",
             summary="LiteRT flatbuffer: float32, float16, dynamic-range or full-integer int8")


def export(ctx, quantize="none", io="int8", calibration_samples=300, allow_select_ops=False, seed=0):
    """Convert ``ctx.model``; write ``model_<variant>.tflite``, ``labels.txt`` and ``model.json``.

    ``quantize=int8`` is full-integer quantization calibrated on ``calibration_samples`` training
    samples, with int8 input and output unless ``io=float``. Only builtin ops are allowed unless
    ``allow_select_ops=true`` (which needs the Flex delegate on the device).
    """
    from core import KerastackError, UsageError

    if quantize not in QUANTIZE:
        raise UsageError(f"exporter 'tflite': quantize={quantize!r} is not one of {', '.join(QUANTIZE)}")
    if io not in IO:
        raise UsageError(f"exporter 'tflite': io={io!r} is not one of {', '.join(IO)}")
    if calibration_samples < 1:
        raise UsageError(f"exporter 'tflite': calibration_samples must be positive, got {calibration_samples}")

    if len(ctx.model.inputs) != 1:
        raise KerastackError(f"exporter 'tflite': the model has {len(ctx.model.inputs)} inputs; "
                         "kerastack's LiteRT runner and verify take models with one input")
    flatbuffer, batch = convert(ctx.model, quantize, io, ctx.dataset, calibration_samples,
                                allow_select_ops, seed)
    variant = {"none": "float32"}.get(quantize, quantize) + ("-floatio" if quantize == "int8" and io == "float" else "")
    return write_files(ctx, flatbuffer, variant, quantize, io, allow_select_ops, batch)


def convert(model, quantize, io, dataset, calibration_samples, allow_select_ops, seed):
    """The flatbuffer and the batch size it was fixed to (None: dynamic batch)."""
    from core import KerastackError

    try:
        return _convert(model, None, quantize, io, dataset, calibration_samples, allow_select_ops, seed), None
    except _NeedsSelectOps as exc:
        # Recurrent layers with a dynamic batch lower to TensorList ops, which only the Flex delegate
        # runs; with a fixed batch of 1 they become LiteRT's fused sequence kernels.
        if not any("TensorList" in op for op in exc.ops):
            raise KerastackError(exc.message) from None
        try:
            flatbuffer = _convert(model, 1, quantize, io, dataset, calibration_samples, allow_select_ops, seed)
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


def _convert(model, batch, quantize, io, dataset, calibration_samples, allow_select_ops, seed):
    import tensorflow as tf

    from core import KerastackError

    (tensor,) = model.inputs
    signature = [tf.TensorSpec([batch, *tensor.shape[1:]], tensor.dtype)]
    float_inputs = tf.as_dtype(tensor.dtype).is_floating
    # Through a SavedModel written by Keras's own exporter: it freezes the variables (converting a
    # tf.function over a Keras 3 model directly leaves READ_VARIABLE ops with no values).
    with tempfile.TemporaryDirectory(prefix="kerastack-savedmodel-") as saved:
        model.export(saved, format="tf_saved_model", verbose=False, input_signature=signature)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved)
        ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantize in ("dynamic", "float16", "int8"):
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
        if quantize == "int8":
            ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.representative_dataset = _calibration(model, dataset, calibration_samples, seed, batch)
            if io == "int8":
                if float_inputs:  # token ids stay integers
                    converter.inference_input_type = tf.int8
                converter.inference_output_type = tf.int8
        if allow_select_ops:
            ops.append(tf.lite.OpsSet.SELECT_TF_OPS)
        converter.target_spec.supported_ops = ops
        try:
            return converter.convert()
        except Exception as exc:
            message = str(exc)
            missing = sorted(set(re.findall(r"\btf\.(\w+)\(", message)))
            if missing and not allow_select_ops:
                raise _NeedsSelectOps(missing) from exc
            first = message.strip().splitlines()[0] if message.strip() else type(exc).__name__
            raise KerastackError(f"exporter 'tflite': conversion ({quantize}) failed: {first}") from exc


def _calibration(model, dataset, samples, seed, batch):
    import numpy as np

    from core.data import as_arrays

    x, _ = as_arrays(dataset.train, limit=samples * 4)
    chosen = np.random.default_rng(seed).permutation(len(x))[:samples]
    dtype = model.inputs[0].dtype

    def generate():
        for i in chosen:
            yield [np.asarray(x[i : i + 1], dtype=dtype)]

    return generate


def write_files(ctx, flatbuffer, variant, quantize, io, allow_select_ops, batch):
    from core import KerastackError
    from core.runs import atomic_path, read_json, write_json, write_text
    from tflite.runner import TFLiteModel

    path = ctx.out_dir / f"model_{variant}.tflite"
    with atomic_path(path) as tmp:
        tmp.write_bytes(flatbuffer)
        model = TFLiteModel(tmp)
        flex = sorted({op for op in model.op_names() if op.startswith("Flex") or op == "CUSTOM"})
        if flex and not allow_select_ops:
            raise KerastackError(f"exporter 'tflite': the converted model needs non-builtin ops {flex}")
        entry = {"quantize": quantize, "io": io if quantize == "int8" else "float", "batch": batch,
                 "size_bytes": len(flatbuffer), "ops": sorted(set(model.op_names())),
                 "input": _tensor(model.input_details), "output": _tensor(model.output_details)}
    spec = ctx.run.get("spec", {})
    written = [path]
    meta_path = ctx.out_dir / "model.json"
    meta = read_json(meta_path, "metadata file") if meta_path.exists() else {}
    meta.update({
        "format": "kerastack-tflite/1",
        "task": spec.get("task"),
        "input_shape": spec.get("input_shape"),
        "class_names": spec.get("class_names"),
        "source_run": str(ctx.run_dir.resolve()),
        "architecture": ctx.run.get("architecture", {}).get("name"),
        "dataset": ctx.run.get("dataset", {}).get("name"),
        "trained_backend": ctx.run.get("training", {}).get("backend"),
    })
    # What a device needs to prepare inputs like the training data: a text dataset's vocabulary,
    # a table's column encodings.
    for key in ("vocabulary", "preprocessing"):
        if getattr(ctx.dataset, key, None) is not None:
            meta[key] = getattr(ctx.dataset, key)
    meta.setdefault("files", {})[path.name] = entry
    written.append(write_json(meta_path, meta))
    if spec.get("class_names"):
        written.append(write_text(ctx.out_dir / "labels.txt", "\n".join(spec["class_names"]) + "\n"))
    return written


def _tensor(details):
    scale, zero_point = details.get("quantization", (0.0, 0))
    return {"name": details["name"], "shape": [int(d) for d in details.get("shape_signature", details["shape"])],
            "dtype": details["dtype"].__name__ if hasattr(details["dtype"], "__name__") else str(details["dtype"]),
            "quantization": {"scale": float(scale), "zero_point": int(zero_point)}}
