"""Converting a Keras model to a LiteRT flatbuffer: the converter's set-up, calibration, the
builtin-ops check, and the check that a quantization-aware model converted to integers only."""

import re
import tempfile
from pathlib import Path

from core import KerastackError
from plugins.deployment.tflite.boxes import is_detector, write_saved_model
from plugins.deployment.tflite.options import INTEGER_VARIANTS, io_type


def convert(model, mode, options, dataset=None, saved=None):
    """The flatbuffer and the batch size it was fixed to (None: dynamic batch).

    ``mode``: a variant (``options.variants``), or ``"qat"``, which converts a fake-quantized model
    to int8 with the ranges it learned. ``options`` (a ``TFLiteOptions``) gives ``io``,
    ``calibration_samples``, ``allow_select_ops``, ``seed`` and ``per_channel``; ``dataset`` the
    calibration samples (int8, int16x8). ``saved``: a folder where the SavedModel the converter
    reads is kept, so that converting the same model again (another variant) skips writing it
    anew; default a temporary folder.
    """
    if saved is None:
        with tempfile.TemporaryDirectory(prefix="kerastack-savedmodel-") as saved:
            return convert(model, mode, options, dataset, saved)
    if is_detector(dataset):  # the graph selects boxes for one image at a time (boxes.py)
        try:
            return _convert(model, 1, mode, options, dataset, saved), 1
        except NeedsSelectOps as exc:
            raise KerastackError(exc.message) from None
    try:
        return _convert(model, None, mode, options, dataset, saved), None
    except NeedsSelectOps as exc:
        # Recurrent layers with a dynamic batch lower to TensorList ops, which only the Flex delegate
        # runs; with a fixed batch of 1 they become LiteRT's fused sequence kernels.
        if not any("TensorList" in op for op in exc.ops):
            raise KerastackError(exc.message) from None
        if mode in (*INTEGER_VARIANTS, "qat"):
            # Measured with TensorFlow 2.21: calibrating the batch-1 WHILE loop crashes the process.
            raise KerastackError(
                f"exporter 'tflite': quantize={mode} cannot convert a recurrent layer that runs as a "
                "loop (TensorList ops); build it with unroll=True (e.g. --hp unroll=true), or export "
                "float32/float16/dynamic"
            ) from None
        try:
            return _convert(model, 1, mode, options, dataset, saved), 1
        except NeedsSelectOps as again:
            raise KerastackError(again.message) from None


class NeedsSelectOps(Exception):
    """The converter needs TensorFlow ops that LiteRT's builtins lack (``ops``)."""

    def __init__(self, ops):
        self.ops = ops
        self.message = (
            f"exporter 'tflite': LiteRT builtin ops cannot run TensorFlow op(s) {', '.join(ops)}; "
            "change the model, or pass --opt allow_select_ops=true (the device then needs the Flex "
            "delegate)"
        )


def _convert(model, batch, mode, options, dataset, saved):
    converter = saved_model_converter(model, batch, mode, options, dataset, saved)
    return run_converter(converter, mode, options.allow_select_ops)


def saved_model_converter(model, batch, mode, options, dataset, saved):
    """A ``TFLiteConverter`` for ``model`` set up for ``mode`` (see ``convert``), not yet run."""
    import tensorflow as tf

    (tensor,) = model.inputs
    # Through a SavedModel written by Keras's own exporter: it freezes the variables (converting a
    # tf.function over a Keras 3 model directly leaves READ_VARIABLE ops with no values). One per
    # batch size, kept in ``saved`` for the next variant of the same model.
    # A detector at batch 1 is followed by its box selection (boxes.py); at any batch (the per-layer
    # int8 errors) it is the model alone.
    detector = batch == 1 and is_detector(dataset)
    path = Path(saved) / f"batch-{batch or 'any'}{'-boxes' if detector else ''}"
    if not (path / "saved_model.pb").exists():
        if detector:
            write_saved_model(model, path)
        else:
            import keras

            signature = [tf.TensorSpec([batch, *tensor.shape[1:]], tensor.dtype)]
            # model.export would trace model(x) with training unset, and a model nested inside (a
            # KerasHub backbone) then normalizes with its batch statistics: inference is pinned here.
            # ``*args`` keeps the input named ``serving_default_args_0`` as model.export names it.
            archive = keras.export.ExportArchive()
            archive.track(model)
            archive.add_endpoint("serve", lambda *args: model(*args, training=False), input_signature=signature)
            archive.write_out(str(path), verbose=False)
    converter = tf.lite.TFLiteConverter.from_saved_model(str(path))
    configure(
        converter,
        mode,
        options.io,
        tf.as_dtype(tensor.dtype).is_floating,
        options.allow_select_ops,
        lambda: calibration(model, dataset, options.calibration_samples, options.seed, batch),
        float_outputs=detector,
    )
    converter._experimental_disable_per_channel = not options.per_channel  # TF 2.21's (private) switch
    return converter


def configure(converter, mode, io, float_inputs, allow_select_ops, calibration, float_outputs=False):
    """Set up ``converter`` for ``mode`` (a variant, or ``"qat"``: int8 from fake-quant ranges).
    ``float_outputs``: the outputs stay float32 whatever ``io`` (a detector's selected boxes, whose
    NON_MAX_SUPPRESSION_V5 LiteRT runs in float only: its integer model keeps the float builtins)."""
    import tensorflow as tf

    ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if mode != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if mode in INTEGER_VARIANTS:
        ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS_INT8
            if mode == "int8"
            else tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        ]
        converter.representative_dataset = calibration()
        if float_outputs:
            ops.append(tf.lite.OpsSet.TFLITE_BUILTINS)
    if mode in (*INTEGER_VARIANTS, "qat") and io != "float":
        integer = tf.as_dtype(io_type(io, mode))
        if float_inputs:  # token ids stay integers
            converter.inference_input_type = integer
        if not float_outputs:
            converter.inference_output_type = integer
    if allow_select_ops:
        ops.append(tf.lite.OpsSet.SELECT_TF_OPS)
    # QAT: the default builtins (asking for TFLITE_BUILTINS_INT8 demands a representative dataset).
    converter.target_spec.supported_ops = ops


def run_converter(converter, mode, allow_select_ops):
    """``converter.convert()``; :class:`NeedsSelectOps` names the TensorFlow ops it could not lower."""
    from core import one_line

    try:
        return converter.convert()
    except Exception as exc:
        message = str(exc)
        # The converter names them "tf.Op(...)" in its listing, or "'tf.Op' op ..." in an error.
        missing = sorted(set(re.findall(r"\btf\.(\w+)(?:\(|' op)", message)))
        if missing and not allow_select_ops:
            raise NeedsSelectOps(missing) from exc
        raise KerastackError(f"exporter 'tflite': conversion ({mode}) failed: {one_line(exc, first=True)}") from exc


def calibration_set(model, dataset, samples, seed):
    """``(x, y)``: the ``samples`` training samples calibration runs on, drawn with ``seed`` (``y``
    None where the split has no targets); standard-normal noise and None where the model takes
    something else than the data."""
    import numpy as np

    from core import as_arrays, input_fits

    x, y = as_arrays(dataset.train, limit=samples * 4)
    if not input_fits(model.input_shape[1:], x.shape[1:]):
        # The deployed part takes something else than the data (a generator's latent vectors, a
        # denoiser's noisy image): calibrate on what it sees at run time, standard-normal noise.
        return np.random.default_rng(seed).normal(size=(samples, *model.input_shape[1:])), None
    chosen = np.random.default_rng(seed).permutation(len(x))[:samples]
    return x[chosen], (None if y is None else np.asarray(y)[chosen])


def calibration(model, dataset, samples, seed, batch):
    """The representative dataset: ``calibration_set``'s samples, one at a time."""
    import numpy as np

    from core import progress_bar

    dtype = model.inputs[0].dtype
    x, _ = calibration_set(model, dataset, samples, seed)

    def generate():
        with progress_bar(len(x), "int8 calibration") as bar:
            for i in range(len(x)):
                yield [np.asarray(x[i : i + 1], dtype=dtype)]
                bar.advance()

    return generate


def check_integer_only(flatbuffer, io, what, layer_names, keras3=True):
    """Fail, naming the layers, if a quantization-aware model converted with float islands in it:
    float32 tensors (other than a float or uint8 input/output with ``io=float`` or ``uint8``) or
    DEQUANTIZE ops."""
    floats, dequantize = _float_computation(flatbuffer, io)
    if not floats and dequantize <= 0:
        return
    # The layers of the float ops, in the order they run: the first is where the island starts.
    named = []
    for tensor in floats:
        named += [n for n in layer_names if _mentions(tensor, n, keras3) and n not in named]
    where = f"layer(s) {', '.join(map(repr, named))}" if named else "tensor(s) " + ", ".join(map(repr, floats[:5]))
    raise KerastackError(
        f"exporter 'tflite': {what}: the int8 model kept float computation ({len(floats)} float tensors, "
        f"{max(dequantize, 0)} DEQUANTIZE ops) at {where}: a layer without fake quantization stays a "
        "float island"
    )


def _float_computation(flatbuffer, io):
    """``(names of the float tensors ops make, in the order they run; DEQUANTIZE ops beyond a float
    input's)`` of a flatbuffer."""
    from tflite.runner import TFLiteModel

    with tempfile.TemporaryDirectory(prefix="kerastack-check-") as tmp:
        path = Path(tmp) / "model.tflite"
        path.write_bytes(flatbuffer)
        model = TFLiteModel(path)
        # io=float: float32 at the edges; io=uint8: uint8 there, requantized to int8 inside.
        io_names = {model.input_details["name"], model.output_details["name"]} if io in ("float", "uint8") else set()
        dtypes = {t["index"]: t for t in model.tensor_dtypes()}
        floats = []
        for op in model.ops():
            for index in op["outputs"]:
                t = dtypes.get(int(index))
                if t and t["dtype"] not in ("int8", "int32") and t["name"] not in io_names:
                    floats.append(t["name"])
        return floats, model.op_names().count("DEQUANTIZE") - (1 if io == "float" else 0)


def _mentions(tensor_name, layer_name, keras3):
    """Whether a LiteRT tensor name comes from the layer: Keras 3's SavedModel export names its ops
    ``<layer name>_<n>/...``, tf_keras ``<layer name>/...``."""
    parts = tensor_name.replace(";", "/").split("/")
    if keras3:
        return any(p.rpartition("_")[0] == layer_name and p.rpartition("_")[2].isdigit() for p in parts)
    return layer_name in parts


def raw_pixel_input(flatbuffer, scale, offset):
    """A uint8-input image model whose input values are the raw 8-bit pixels: the model takes
    ``pixel * scale + offset``, so the input tensor's quantization becomes scale ``scale``, zero point
    ``-offset / scale``. Calibration gives the range the training images happened to span (a set
    without a pure white pixel gets another scale), while apps (MediaPipe Tasks) feed pixels as
    they are. Exact where the input's only readers are QUANTIZE ops (uint8 → the calibrated int8:
    they requantize from whatever the input says); ``(flatbuffer, False)`` unchanged otherwise, or
    where the zero point would not be a uint8. Returns ``(flatbuffer, changed)``."""
    import numpy as np
    from ai_edge_litert import schema_py_generated as schema

    zero_point = -offset / scale
    if abs(zero_point - round(zero_point)) > 1e-6 or not 0 <= round(zero_point) <= 255:
        return flatbuffer, False
    data = bytearray(flatbuffer)
    model = schema.Model.GetRootAs(data, 0)
    graph = model.Subgraphs(0)
    index = graph.Inputs(0)
    tensor = graph.Tensors(index)
    quantization = tensor.Quantization()
    if tensor.Type() != schema.TensorType.UINT8 or quantization is None or quantization.ScaleLength() != 1:
        return flatbuffer, False
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        if index in op.InputsAsNumpy().tolist():
            code = model.OperatorCodes(op.OpcodeIndex())
            if max(code.BuiltinCode(), code.DeprecatedBuiltinCode()) != schema.BuiltinOperator.QUANTIZE:
                return flatbuffer, False
    # The generated reader's numpy views lie over ``data``: same sizes, written in place.
    quantization.ScaleAsNumpy()[0] = np.float32(scale)
    quantization.ZeroPointAsNumpy()[0] = np.int64(round(zero_point))
    return bytes(data), True
