"""Per-layer errors of each integer variant, and ``keep_float``: int8 with some Keras layers left float.

``keep_float=stem,mix`` leaves the ops of those layers float (TensorFlow's quantizer, fed
``denylisted_nodes``: their inputs are dequantized, their outputs quantized again for the next
int8 op). ``keep_float=auto`` starts from the all-int8 model and, while it is more than
``KEEP_FLOAT_TOLERANCE`` worse than the float model on the validation split, keeps one more layer
float: the worst of the per-layer table, or first a consumer of a layer already float (its
float output is quantized again where the next int8 op reads it: an outlier tensor is crushed
there as well). Each step is checked end to end on LiteRT; at the end, layers whose removal keeps
the model within tolerance go back to int8. ``keep_float_max`` caps the layers kept float.
"""

import tempfile
from pathlib import Path

import numpy as np

from core import KerastackError, UsageError, as_arrays, choices_text, did_you_mean, input_fits, one_line, task_named
from plugins.deployment.tflite import layer_errors
from plugins.deployment.tflite.boxes import is_detector
from plugins.deployment.tflite.checks import warn
from plugins.deployment.tflite.convert import calibration, calibration_set, saved_model_converter
from tflite.runner import model_ops

AUTO = "auto"
KEEP_FLOAT_TOLERANCE = 0.01  # classification: 1 accuracy point; lower-is-better metrics: 1 % of float's
FLOAT_OPS = ("QUANTIZE", "DEQUANTIZE")  # the seams of a mixed model, counted neither way


def requested(value):
    """The layer names ``keep_float`` gives (``["auto"]`` for auto; ``[]`` when off or ``none``)."""
    return [name.strip() for name in str(value or "").split(",") if name.strip() and name.strip() != "none"]


FRONT_ENDS = ("MelSpectrogram", "STFTSpectrogram")  # Keras layers whose range int8 cannot hold


def front_ends(model, options):
    """``options`` with ``keep_float`` naming the model's spectrogram layers, for an int8 export that
    did not say (``keep_float`` unset; ``none`` keeps all int8): int8's 256 steps over a power
    spectrum's ~100 dB keep only the loudest bins (audio_cnn on sounds: 0.917 all-int8 → 0.600;
    the spectrogram kept float: 0.917). Said on stderr; model.json's ``mixed`` records it."""
    from dataclasses import replace

    if options.keep_float or "int8" not in options.variants or options.qat != "none":
        return options
    names = [layer.name for layer in model.layers if type(layer).__name__ in FRONT_ENDS]
    if not names:
        return options
    warn(
        f"keep_float={','.join(names)}: the spectrogram stays float in the int8 file, which int8 would "
        "flatten (--opt keep_float=none for all int8)"
    )
    return replace(options, keep_float=",".join(names))


# -- per-layer errors of a plain variant ------------------------------------------------------------


def variant_errors(model, mode, options, dataset, saved, flatbuffer):
    """model.json's ``layer_errors`` for an int8 or int16x8 file (``flatbuffer``), or
    ``layer_errors_error`` saying why they could not be measured (the file itself is fine)."""
    try:
        names, output = layer_errors.keras_layer_names(model), layer_errors.output_layer_name(model)
        if mode == "int8":
            debugger = _debugger(model, options, dataset, saved)
            per_tensor, kind = debugger.errors(), "local"
        else:
            float_model = _flatbuffer(model, "none", options, saved)
            samples = [s[0] for s in _samples(model, options, dataset)()]
            per_tensor, kind = layer_errors.cumulative_errors(float_model, flatbuffer, samples), "cumulative"
        return {"layer_errors": layer_errors.by_layer(per_tensor, names, output, kind)}
    except Exception as exc:  # a diagnosis that fails must not lose the file
        return {"layer_errors_error": one_line(exc, first=True)}


def _samples(model, options, dataset):
    count = min(options.calibration_samples, layer_errors.ERROR_SAMPLES)
    return calibration(model, dataset, count, options.seed, None)


def _debugger(model, options, dataset, saved, batch=None):
    converter = saved_model_converter(model, batch, "int8", options, dataset, saved)
    return layer_errors.Int8Debugger(converter, _samples(model, options, dataset))


def _flatbuffer(model, mode, options, saved):
    from plugins.deployment.tflite.convert import run_converter

    return run_converter(saved_model_converter(model, None, mode, options, None, saved), mode, False)


# -- keep_float -----------------------------------------------------------------------------------


def mixed_int8(ctx, model, options, saved):
    """``(flatbuffer, model.json extra)`` of the int8 model with the layers ``options.keep_float``
    names (or chooses: ``auto``) left float. ``(None, extra)`` where ``auto`` keeps no layer, or has
    too few samples to decide: the exporter then writes the plain int8 model, and ``extra``'s
    ``keep_float`` (also said on stderr) says why there is no mixed file."""
    names, output = layer_errors.keras_layer_names(model), layer_errors.output_layer_name(model)
    wanted = requested(options.keep_float)
    if wanted != [AUTO]:
        _check_names(wanted, names, {n: [n] for n in names})  # unknown names: before any work
    split, (x, y) = decision_data(ctx.dataset, model, options)
    if wanted == [AUTO] and len(x) < MIN_DECIDING_SAMPLES:
        return None, _plain(split, len(x), _too_few(ctx, split, len(x)))
    # A detector's mixed file is its whole graph, box selection included (batch 1, see boxes.py).
    debugger = _debugger(model, options, ctx.dataset, saved, 1 if is_detector(ctx.dataset) else None)
    calibrated = debugger.calibrated_model
    nodes = _nodes_by_layer(calibrated, names, output)
    check = _Checker(ctx, model, options, calibrated, nodes, debugger.disable_per_channel, split, x, y)
    all_int8 = layer_errors.by_layer(debugger.errors(), names, output, "local")
    if wanted == [AUTO]:
        kept, steps = _auto(check, all_int8, model, options.keep_float_max)
        if not kept:
            return None, _plain(split, len(x), _none_kept(check, steps))
    else:
        _check_names(wanted, names, nodes)
        kept, steps = wanted, [check.step([]), check.step(wanted)]
    flatbuffer = check.flatbuffer(kept)
    rows = layer_errors.by_layer(debugger.errors(_denylist(kept, nodes)), names, output, "local")
    rows = [r for r in rows if r["layer"] not in kept]
    mixed = {
        "keep_float": options.keep_float,
        "float_layers": kept,
        **integer_share(flatbuffer),
        "metric": check.metric_name,
        "split": check.split,
        "samples": len(x),
        "float_metric": check.float_score,
        "all_int8_metric": steps[0]["metric"],
        "mixed_metric": check.step(kept)["metric"],
        "steps": steps,
        "all_int8_layer_errors": all_int8,
    }
    return flatbuffer, {"mixed": mixed, "layer_errors": rows}


MIN_DECIDING_SAMPLES = 100  # 1 / KEEP_FLOAT_TOLERANCE: one sample moves accuracy by at most the tolerance


def _too_few(ctx, split, samples):
    if task_named(ctx.run.get("spec", {}).get("task")).classes:
        tolerance = f"{KEEP_FLOAT_TOLERANCE * 100:g} point (one sample moves accuracy by {1 / samples:.1%})"
    else:
        tolerance = f"{KEEP_FLOAT_TOLERANCE:.0%}"
    return f"{split} are too few to tell int8 from float within {tolerance}; it needs {MIN_DECIDING_SAMPLES}"


def _none_kept(check, steps):
    first = steps[0]
    return (
        f"all int8 is within tolerance of float on {check.split}: "
        f"{check.metric_name} {first['metric']:.4f} against float's {check.float_score:.4f}, so no layer is kept float"
    )


def _plain(split, samples, why):
    """model.json's ``keep_float`` of a plain int8 file written instead of a mixed one; says so on stderr."""
    warn(f"keep_float=auto: {why}; wrote the plain int8 model (model_int8*.tflite), not a mixed one")
    return {"keep_float": {"asked": AUTO, "float_layers": [], "split": split, "samples": samples, "why": why}}


def decision_data(dataset, model, options):
    """``(what, (x, y))``: the samples ``keep_float`` scores int8 against float on: the validation split
    (else the evaluation split) and the calibration samples together, so that a small validation
    split does not decide by chance."""
    split = getattr(dataset, "validation", None)
    name = "validation"
    if split is None:
        name, split = dataset.evaluation_split()
    x, y = as_arrays(split, limit=2048)
    if x is None or len(x) == 0 or not input_fits(model.input_shape[1:], np.shape(x)[1:]):
        raise KerastackError(
            f"exporter 'tflite': keep_float checks the mixed model on the data, but the {name} split is empty "
            f"or the deployed model does not take its samples (input shape {model.input_shape[1:]})"
        )
    cal_x, cal_y = calibration_set(model, dataset, options.calibration_samples, options.seed)
    if (y is None) != (cal_y is None):
        return f"{len(x)} {name} samples", (x, y)
    what = f"{len(x)} {name} + {len(cal_x)} calibration samples"
    x = np.concatenate([x, np.asarray(cal_x, x.dtype)])
    y = None if y is None else np.concatenate([np.asarray(y), np.asarray(cal_y, np.asarray(y).dtype)])
    return what, (x, y)


def _auto(check, ranked, model, budget):
    """Greedy: the worst layer (or a consumer of a float one) float, one at a time, until within
    tolerance or ``budget`` layers; then drop the ones not needed."""
    order = [r["layer"] for r in ranked]
    users = _consumers(model)
    kept, promoted = [], []
    steps = [check.step([])]
    while not steps[-1]["within"] and len(kept) < budget:
        candidates = [n for n in promoted + order if n not in kept and n in check.nodes]
        if not candidates:
            break
        kept.append(candidates[0])
        promoted = [u for u in users.get(candidates[0], []) if u not in kept] + promoted
        steps.append(check.step(kept))
    if steps[-1]["within"]:
        for layer in list(kept):
            trial = [k for k in kept if k != layer]
            if trial != kept and check.step(trial, steps)["within"]:
                kept = trial
    return kept, steps


def _consumers(model):
    """``layer name → [names of the layers that read its output]``."""
    from plugins.deployment.tflite.bridge import nodes

    out = {}
    try:
        for node in nodes(model):
            for tensor in node.input_tensors:
                history = getattr(tensor, "_keras_history", None)
                if history is not None:
                    out.setdefault(history.operation.name, []).append(node.operation.name)
    except KerastackError:
        return {}  # a subclassed model: no graph, no promotion
    return out


def _check_names(wanted, names, nodes):
    if AUTO in wanted:
        raise UsageError("exporter 'tflite': keep_float=auto chooses the layers itself; give it alone")
    valid = [n for n in names if nodes.get(n)]
    for name in wanted:
        if name not in names:
            raise UsageError(
                f"exporter 'tflite': keep_float: no layer {name!r} in the model{did_you_mean(name, valid)}; "
                f"valid: {choices_text(valid)}, or auto"
            )
        if name not in nodes:
            raise UsageError(
                f"exporter 'tflite': keep_float: layer {name!r} has no op in the LiteRT model (nothing to keep "
                f"float); valid: {choices_text(valid)}, or auto"
            )


def _nodes_by_layer(flatbuffer, names, output):
    """``layer name → [output tensor names of its ops]`` in a (calibrated) flatbuffer."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=flatbuffer)
    out = {}
    for op in model_ops(interpreter):
        for index in op["outputs"]:
            name = interpreter._get_tensor_details(index, 0)["name"]
            for layer in layer_errors.layers_of(name, names, output):  # a fused op: each of its layers
                out.setdefault(layer, []).append(name)
    return out


def _denylist(layers, nodes):
    return [n for layer in layers for n in nodes[layer]]


class _Checker:
    """Quantizes the calibrated model with some layers float, and scores it end to end on LiteRT
    on ``x``, ``y`` (``decision_data``: ``split`` says what they are)."""

    def __init__(self, ctx, model, options, calibrated, nodes, disable_per_channel, split, x, y):
        self.options, self.calibrated, self.nodes, self.dataset = options, calibrated, nodes, ctx.dataset
        self.disable_per_channel = disable_per_channel
        self.float_inputs = np.dtype(model.inputs[0].dtype).kind == "f"
        self.task = task_named(ctx.run.get("spec", {}).get("task"))
        self.split, self.x, self.y = split, *self.task.targets(x, y)
        self.metric_name, self.higher = self.task.metric or ("max_abs_diff", False)
        self.float_score = self._score(self.task.deployed(np.asarray(model.predict(self.x, verbose=0), np.float32)))
        self._cache = {}

    def flatbuffer(self, layers):
        import tensorflow as tf
        from tensorflow.lite.python import convert as tf_convert

        key = tuple(sorted(layers))
        if key not in self._cache:
            # mlir_quantize makes int8 or float interfaces; uint8 is set on the result, as
            # TFLiteConverter itself does.
            integer = tf.int8 if self.options.io == "int8" else tf.float32
            flatbuffer = tf_convert.mlir_quantize(
                self.calibrated,
                disable_per_channel=self.disable_per_channel,
                input_data_type=integer if self.float_inputs else tf.float32,
                output_data_type=tf.float32 if is_detector(self.dataset) else integer,
                denylisted_nodes=_denylist(layers, self.nodes) or None,
            )
            if self.options.io == "uint8":
                from tensorflow.lite.python.util import modify_model_io_type

                inputs = tf.uint8 if self.float_inputs else tf.float32
                flatbuffer = modify_model_io_type(flatbuffer, inputs, tf.uint8)
            self._cache[key] = flatbuffer
        return self._cache[key]

    def step(self, layers, log=None):
        """``{"float_layers", "metric", "within"}`` of the model with ``layers`` float (``log``: append)."""
        from tflite.runner import TFLiteModel

        with tempfile.TemporaryDirectory(prefix="kerastack-mixed-") as tmp:
            path = Path(tmp) / "model.tflite"
            path.write_bytes(self.flatbuffer(layers))
            out = TFLiteModel(path).predict(self.x)
        score = self._score(np.asarray(out, np.float32))
        step = {"float_layers": list(layers), "metric": score, "within": self.within(score)}
        if log is not None:
            log.append(step)
        return step

    def within(self, score):
        if self.higher:
            return score >= self.float_score - KEEP_FLOAT_TOLERANCE
        return score <= self.float_score * (1 + KEEP_FLOAT_TOLERANCE) + 1e-12

    def _score(self, out):
        """The task's metric of ``out`` (Keras's own outputs: the float model's score is the reference)."""
        scorer = self.task.scorer()
        scorer.add(self.x, self.y, out)
        return scorer.keras_result().get(self.metric_name, 0.0)


def integer_share(flatbuffer):
    """``{"int8_ops", "int8_weights"}``: the fractions of compute ops (QUANTIZE/DEQUANTIZE aside)
    whose outputs are integers, and of weight values (constant tensors) stored as integers."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=flatbuffer)
    details = {t["index"]: t for t in interpreter.get_tensor_details()}
    ops = model_ops(interpreter)
    produced = {i for op in ops for i in op["outputs"]}
    inputs = {d["index"] for d in interpreter.get_input_details()}
    compute = [op for op in ops if op["op_name"] not in FLOAT_OPS]
    integer_ops = sum(all(np.dtype(details[i]["dtype"]).kind in "iu" for i in op["outputs"]) for op in compute)
    constants = {i for op in ops for i in op["inputs"] if i >= 0 and i not in produced and i not in inputs}
    stored = {"int": 0, "float": 0}
    for index in constants:
        t = details[index]
        kind = np.dtype(t["dtype"]).kind
        quantized = bool(t["quantization_parameters"]["scales"].size)
        if kind == "f":
            stored["float"] += int(np.prod(t["shape"]))
        elif quantized:  # int32 shapes and indices are not weights
            stored["int"] += int(np.prod(t["shape"]))
    total = stored["int"] + stored["float"]
    return {
        "int8_ops": integer_ops / len(compute) if compute else 0.0,
        "int8_weights": stored["int"] / total if total else 0.0,
        "ops": len(compute),
        "weights": total,
    }
