"""Per-layer quantization error, named by Keras layer: which layer's int8 (or int16x8) activations
lost what the float model computed.

int8: TensorFlow's ``QuantizationDebugger`` builds the debug model, in which every quantized op has
a float twin fed the same (dequantized) inputs and a ``NumericVerify`` op comparing the two: each
layer's own error, not the error accumulated before it. Its ``layer_direct_compare_metrics`` hands
us both tensors; we keep running sums per output channel over the samples.

int16x8: TensorFlow 2.21's debugger (its MLIR quantizer) cannot make int16 activations (the
model it builds fails to prepare: ``fully_connected.cc ... zero_point != 0``), so each op output
of the int16x8 file is compared with the same tensor of the float32 file on the same inputs:
the error accumulated up to that layer ("cumulative" in the table).

The metrics, per Keras layer (its worst op output where it has several):

- ``rel_rmse``: RMSE between quantized and float, divided by the float activation's standard deviation;
- ``cosine``: cosine similarity of the quantized and float activations;
- ``snr_db``: the **worst output channel's** signal-to-noise ratio (dB), channel = last axis.
  One outlier channel (a "massive activation") sets the whole tensor's scale and crushes the
  others: the tensor-wide RMSE and cosine hardly move (the outlier dominates both), the worst
  channel's SNR falls below 0 dB. Rows are sorted by it, worst first.
"""

import warnings

import numpy as np

SNR_CAP_DB = 99.0  # a channel reproduced exactly
ERROR_SAMPLES = 100  # calibration samples the errors are measured on
# A layer is flagged when one of these is crossed (int8 layers of healthy models measured here:
# worst-channel SNR 15-45 dB, cosine > 0.999, rel RMSE < 0.05).
FLAG_SNR_DB = 10.0
DEAD_CHANNEL = 0.01
FLAG_COSINE = 0.98
FLAG_REL_RMSE = 0.2


NO_SIGNAL = 1e-6  # a float activation that varies over the samples by less than this share of its peak ...
NO_SIGNAL_PEAK = 1e-6  # ... or never exceeds this in size carries no signal to lose: "no signal", never flagged


class _Sums:
    """Running sums over samples of one tensor, per output channel (last axis); ``add`` takes one
    sample (or batch) at a time."""

    def __init__(self):
        self.n = None
        self.first, self.deviation, self.peak, self.samples = None, 0.0, 0.0, 0

    def add(self, reference, quantized):
        f = np.asarray(reference, np.float64)
        q = np.asarray(quantized, np.float64).reshape(f.shape)
        self._track_signal(f)
        channels = f.shape[-1] if f.ndim else 1
        f, q = f.reshape(-1, channels), q.reshape(-1, channels)
        parts = (
            np.full(channels, len(f), np.float64),
            f.sum(0),
            (f * f).sum(0),
            ((q - f) ** 2).sum(0),
            (q * q).sum(0),
            (q * f).sum(0),
        )
        if self.n is None or len(self.n) != channels:
            self.n, self.f, self.ff, self.ee, self.qq, self.qf = parts
        else:
            for name, value in zip(("n", "f", "ff", "ee", "qq", "qf"), parts):
                setattr(self, name, getattr(self, name) + value)

    def _track_signal(self, f):
        """How far the float activation strays from the first sample's, and its largest size."""
        self.samples += 1
        self.peak = max(self.peak, float(np.max(np.abs(f))) if f.size else 0.0)
        if self.first is None or self.first.shape != f.shape:
            self.first = f.copy()
        elif f.size:
            self.deviation = max(self.deviation, float(np.max(np.abs(f - self.first))))

    def no_signal(self):
        """Whether the float activation is the same for every sample (two or more), or about 0: its
        quantization error is not a loss of signal (the SNR of numbers ~1e-10 rounded to 0 is 0 dB,
        and their cosine 1), whatever the metrics say."""
        constant = self.samples > 1 and self.deviation <= NO_SIGNAL * self.peak
        return bool(constant or self.peak <= NO_SIGNAL_PEAK)

    def metrics(self):
        n, f, ff, ee = self.n.sum(), self.f.sum(), self.ff.sum(), self.ee.sum()
        spread = np.sqrt(max(ff / n - (f / n) ** 2, 0.0))
        rmse = np.sqrt(ee / n)
        rel = rmse / spread if spread > 0 else (0.0 if rmse == 0 else float("inf"))
        norm = np.sqrt(ff * self.qq.sum())
        cosine = self.qf.sum() / norm if norm > 0 else 1.0
        # A channel (almost) always 0 in float has no signal to lose: one whose RMS is under
        # DEAD_CHANNEL of the median channel's is left out (the median: an outlier channel is one of many).
        rms = np.sqrt(self.ff / self.n)
        live = rms > 0
        if live.any():
            live &= rms >= DEAD_CHANNEL * np.median(rms[live])
        with np.errstate(divide="ignore"):
            snr = np.where(self.ee[live] > 0, 10 * np.log10(self.ff[live] / self.ee[live]), SNR_CAP_DB)
        snr = np.minimum(snr, SNR_CAP_DB)
        worst = int(np.flatnonzero(live)[np.argmin(snr)]) if snr.size else None
        return {
            "rel_rmse": float(min(rel, 1e9)),
            "cosine": float(cosine),
            "snr_db": float(snr.min()) if snr.size else SNR_CAP_DB,
            "worst_channel": worst,
            "channels": int(len(self.n)),
            "no_signal": self.no_signal(),
        }


# -- tensor names → Keras layers -------------------------------------------------------------------


def keras_layer_names(model):
    """Every layer name of ``model`` but its inputs, nested models opened (outer first)."""
    names = []
    for layer in model.layers:
        if type(layer).__name__ != "InputLayer":
            names.append(layer.name)
        if hasattr(layer, "layers"):
            names += keras_layer_names(layer)
    return names


def layers_of(tensor_name, names, output_layer=None):
    """The Keras layers a LiteRT tensor comes from, its own first; [] when none. Keras 3's
    SavedModel export names the ops ``<model>_<n>/<layer>_<n>/<op>``; a fused op joins the names
    of the ops it replaced with ``;`` (a Conv2D, its BatchNormalization and ReLU become one
    CONV_2D named for the ReLU first): the first names the op's own layer, the innermost one
    named in a segment wins."""
    known, found = set(names), []
    for segment in tensor_name.split(";"):
        for part in reversed(segment.split("/")):
            stem, _, number = part.rpartition("_")
            if number.isdigit() and stem in known:
                if stem not in found:
                    found.append(stem)
                break
    if not found and output_layer and tensor_name.startswith("StatefulPartitionedCall"):
        found = [output_layer]  # the model's output (a fused softmax): its last layer's
    return found


def layer_of(tensor_name, names, output_layer=None):
    """The Keras layer a LiteRT tensor is named for (``layers_of``'s first), or None."""
    found = layers_of(tensor_name, names, output_layer)
    return found[0] if found else None


def output_layer_name(model):
    """The name of the layer that makes the model's (first) output."""
    history = getattr(model.outputs[0], "_keras_history", None)
    return history.operation.name if history is not None else None


def by_layer(per_tensor, names, output_layer, kind):
    """Rows, one per Keras layer (its worst tensor), sorted worst first, flagged: the table."""
    rows = {}
    for tensor, metrics in per_tensor.items():
        found = layers_of(tensor, names, output_layer)
        if not found:
            continue
        layer, fused = found[0], found[1:]
        row = rows.get(layer)
        if row is None or _worse(metrics, row):
            fused = list(dict.fromkeys((row or {}).get("fused", []) + fused))
            rows[layer] = {"layer": layer, **metrics, "fused": fused, "tensor": tensor, "kind": kind}
        else:
            row["fused"] = list(dict.fromkeys(row["fused"] + fused))
    return rank(list(rows.values()))


def _worse(a, b):
    return _order(a) < _order(b)


def _order(metrics):
    """Worst first: a layer with signal before one without, then by worst-channel SNR, relative RMSE."""
    return bool(metrics.get("no_signal")), metrics["snr_db"], -metrics["rel_rmse"]


def rank(rows):
    """Sort worst first (worst-channel SNR, then relative RMSE; layers with no signal last) and flag
    the layers past a threshold, but for those with no signal (``_Sums.no_signal``)."""
    rows = sorted(rows, key=_order)
    for row in rows:
        row["flagged"] = not row.get("no_signal") and bool(
            row["snr_db"] < FLAG_SNR_DB or row["cosine"] < FLAG_COSINE or row["rel_rmse"] > FLAG_REL_RMSE
        )
    return rows


# -- int8: QuantizationDebugger ----------------------------------------------------------------------


class Int8Debugger:
    """TensorFlow's ``QuantizationDebugger`` on a converter set up for int8 (calibrated once), with
    our per-channel sums; ``errors(denylisted_nodes)`` again for a mixed model costs no calibration.

    The debugger made from a converter keeps no intermediate tensors (TensorFlow 2.21 creates its
    interpreter without ``experimental_preserve_all_tensors``: the float twins read back reused
    memory); the one made from the debug model's bytes does. So one of each: the first calibrates
    and builds debug models, the second runs them."""

    def __init__(self, converter, samples):
        import tensorflow as tf

        self.samples = samples  # a generator factory, as the converter's representative dataset
        self._tensor = 0
        self._sums = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            self.builder = tf.lite.experimental.QuantizationDebugger(converter=converter, debug_dataset=samples)
        self.disable_per_channel = converter._experimental_disable_per_channel

    @property
    def calibrated_model(self):
        """The calibrated float model the quantizer reads (``mlir_quantize``'s input)."""
        return self.builder.calibrated_model

    def _counted(self):
        for sample in self.samples():
            self._tensor = 0  # the debugger visits the NumericVerify ops in the same order each sample
            yield sample

    def _record(self, float_tensor, quantized, scale, zero_point):
        if self._tensor == len(self._sums):
            self._sums.append(_Sums())
        dequantized = (quantized.astype(np.float64) - zero_point) * scale
        self._sums[self._tensor].add(float_tensor, dequantized)
        self._tensor += 1
        return 0.0

    def errors(self, denylisted_nodes=()):
        """``{tensor name: metrics}`` of the int8 model with ``denylisted_nodes`` left float."""
        import tensorflow as tf

        options = tf.lite.experimental.QuantizationDebugOptions
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            self.builder.options = options(denylisted_nodes=list(denylisted_nodes) or None)
            runner = tf.lite.experimental.QuantizationDebugger(
                quant_debug_model_content=self.builder.get_debug_quantized_model(),
                debug_dataset=self._counted,
                debug_options=options(layer_direct_compare_metrics={"sums": self._record}),
            )
        self._sums = []
        with warnings.catch_warnings():  # tf.lite.Interpreter's deprecation, preserve_all_tensors' cost
            warnings.simplefilter("ignore", UserWarning)
            runner.run()
        names = [_quantized_name(k) for k in runner.layer_statistics]  # visiting order
        return {name: sums.metrics() for name, sums in zip(names, self._sums)}


def _quantized_name(numeric_verify_name):
    """``NumericVerify/<tensor name><i>:<index>`` → the tensor name (as the debugger's own dump does)."""
    name = numeric_verify_name.rsplit(":", 1)[0].removeprefix("NumericVerify/")
    return name[:-1] if name[-1:].isdigit() else name


# -- int16x8: the file against the float32 file ------------------------------------------------------


def cumulative_errors(float_flatbuffer, quantized_flatbuffer, samples):
    """``{tensor name: metrics}`` for each op output of ``quantized_flatbuffer`` that the float file
    also has, both run on ``samples`` (a list of float input arrays, batch 1)."""
    from ai_edge_litert.interpreter import Interpreter

    from tflite.runner import model_ops

    ref = Interpreter(model_content=float_flatbuffer, experimental_preserve_all_tensors=True)
    got = Interpreter(model_content=quantized_flatbuffer, experimental_preserve_all_tensors=True)
    for interpreter in (ref, got):
        interpreter.allocate_tensors()
    ref_names = {t["name"]: t for t in ref.get_tensor_details()}
    outputs = [
        got._get_tensor_details(i, 0) for op in model_ops(got) for i in op["outputs"] if i >= 0
    ]  # in the order they run
    pairs = [(t, ref_names[t["name"]]) for t in outputs if t["name"] in ref_names and t["dtype"] != np.int32]
    sums = {t["name"]: _Sums() for t, _ in pairs}
    for x in samples:
        for interpreter in (ref, got):
            detail = interpreter.get_input_details()[0]
            interpreter.set_tensor(detail["index"], _quantize(x, detail))
            interpreter.invoke()
        for t, r in pairs:
            sums[t["name"]].add(_dequantize(ref.get_tensor(r["index"]), r), _dequantize(got.get_tensor(t["index"]), t))
    return {name: s.metrics() for name, s in sums.items()}


def _quantize(x, detail):
    scale, zero_point = detail["quantization"]
    if np.dtype(detail["dtype"]).kind == "f" or not scale:
        return np.asarray(x, detail["dtype"])
    info = np.iinfo(detail["dtype"])
    return np.clip(np.round(np.asarray(x) / scale + zero_point), info.min, info.max).astype(detail["dtype"])


def _dequantize(value, detail):
    scale, zero_point = detail["quantization"]
    if np.dtype(detail["dtype"]).kind == "f" or not scale:
        return value.astype(np.float64)
    return (value.astype(np.float64) - zero_point) * scale
