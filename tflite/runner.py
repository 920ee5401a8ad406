"""Run a .tflite model with LiteRT: float in, float out, whatever the model's own tensor types.

Imports only the standard library and numpy at module level; `ai_edge_litert` is imported when a model
is opened, so `import tflite` stays cheap.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .audio import audio_spec, fit_length, read_wav, resample
from .metadata import EMBEDDED_KEY, read_metadata
from .tables import encode_rows, read_rows, standardize, table_columns
from .text import tokenizer_from_metadata

__all__ = [
    "TFLiteModel",
    "at_limits",
    "clipping_warning",
    "load_metadata",
    "load_labels",
    "latency_percentiles",
    "model_ops",
    "range_warning",
]

_QUANTIZED_TYPES = (np.int8, np.uint8, np.int16)
# A detector's four outputs (kerastack's export names them so; MediaPipe's ObjectDetector reads them):
# boxes [1, K, 4] (ymin, xmin, ymax, xmax, relative), classes [1, K], scores [1, K], count [1].
DETECTION_OUTPUTS = ("detection_boxes", "detection_classes", "detection_scores", "num_detections")
_SEAMS = ("QUANTIZE", "DEQUANTIZE")  # where an integer model enters and leaves float
_RUNTIME_NOISE = "INFO: Created TensorFlow Lite XNNPACK delegate"
# Input beyond the training range by more than this fraction of the range is "far outside" it.
FAR_OUTSIDE = 0.5


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


@contextlib.contextmanager
def _without_runtime_noise():
    """Drop LiteRT's "Created ... XNNPACK delegate" line, pass any other C++ stderr output on.

    The runtime prints it to file descriptor 2 on the first allocation in a process and ignores
    TF_CPP_MIN_LOG_LEVEL; left alone it would precede every CLI result and one-line error.
    """
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all: nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode("utf-8", errors="replace")
            rest = [line for line in text.splitlines(keepends=True) if not line.startswith(_RUNTIME_NOISE)]
            if rest:
                sys.stderr.write("".join(rest))


def load_metadata(tflite_path: str | Path) -> dict | None:
    """What the exporter recorded about `tflite_path`, with this file's entry under "file".

    The copy the exporter embedded in the .tflite itself (metadata entry "kerastack", see
    `tflite.metadata`) is the truth: it travels with the file, so another export's `model.json` or
    `labels.txt` in the same folder cannot contradict it. A file without embedded metadata (exported
    before it was embedded, or converted elsewhere) uses the `model.json` beside it.
    Returns every top-level key plus "file" (the `files[<this file name>]` entry, or None when the
    metadata does not list this file; an embedded copy describes only its own file, whatever the file
    is called now). Returns None when there is neither embedded metadata nor a model.json.
    """
    path = Path(tflite_path)
    meta_path = path.parent / "model.json"
    raw = read_metadata(path).get(EMBEDDED_KEY) if path.is_file() else None
    embedded = raw is not None
    if embedded:
        source = f"{path} (embedded {EMBEDDED_KEY!r} metadata)"
    elif meta_path.is_file():
        source = str(meta_path)
    else:
        return None
    try:
        data = json.loads(raw.decode("utf-8") if embedded else meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{source}: cannot read metadata ({_first_line(e)})") from e
    if not isinstance(data, dict):
        raise ValueError(f"{source}: metadata must be a JSON object, got {type(data).__name__}")
    files = data.get("files")
    merged = dict(data)
    merged["file"] = files.get(path.name) if isinstance(files, dict) else None
    if merged["file"] is None and embedded and isinstance(files, dict) and len(files) == 1:
        merged["file"] = next(iter(files.values()))  # the file was renamed after export
    return merged


def load_labels(tflite_path: str | Path, metadata: dict | None = None) -> list[str] | None:
    """Class names: the metadata's "class_names" (see `load_metadata`), else `labels.txt` beside the
    model (one per line: for files that carry no metadata), else None."""
    names = (metadata or {}).get("class_names")
    if names:
        return [str(n) for n in names]
    labels_path = Path(tflite_path).parent / "labels.txt"
    if labels_path.is_file():
        lines = labels_path.read_text(encoding="utf-8").splitlines()
        while lines and not lines[-1].strip():  # a trailing newline is not a class
            lines.pop()
        return [line.strip() for line in lines]
    return None


def _numbers(value: object, *keys: str) -> tuple[float, ...] | None:
    if not isinstance(value, dict):
        return None
    found = tuple(value.get(k) for k in keys)
    ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in found)
    return tuple(float(v) for v in found) if ok else None


def range_warning(x: np.ndarray, metadata: dict | None, normalized: bool = False) -> str | None:
    """One line saying that ``x`` lies far outside the input range the metadata records (the
    training inputs' "input_range"), by how much, and what to do; None when it does not, or when no
    range is recorded. ``normalized``: ``x`` was already scaled with the recorded normalization."""
    recorded = _numbers((metadata or {}).get("input_range"), "min", "max")
    x = np.asarray(x)
    if recorded is None or x.size == 0 or x.dtype.kind not in "biuf":
        return None
    low, high = recorded
    got_low, got_high = float(np.nanmin(x)), float(np.nanmax(x))
    beyond = max(low - got_low, got_high - high, 0.0)
    if not np.isfinite(beyond) or beyond <= FAR_OUTSIDE * max(high - low, 1e-6):
        return None
    scaling = _numbers((metadata or {}).get("normalization"), "scale", "offset")
    if normalized:
        hint = "the recorded normalization was applied: is the input what the training data was made from?"
    elif scaling is not None:
        hint = f"pass --normalize to scale it as the training data was (x * {scaling[0]:.6g} + {scaling[1]:.6g})"
    else:
        hint = "scale it as the training data was (the metadata records no normalization to apply)"
    return (
        f"input values span [{got_low:.6g}, {got_high:.6g}], far outside the range the model was trained "
        f"on, [{low:.6g}, {high:.6g}] (up to {beyond:.6g} beyond it); {hint}"
    )


def model_ops(interpreter) -> list[dict]:
    """The ops of the model an ``Interpreter`` runs, in execution order: ``{"index", "op_name",
    "inputs", "outputs"}`` each. The nodes the runtime adds when a delegate (XNNPACK, by default)
    takes over part of the graph are left out: ``DELEGATE`` is not an op of the model, and how many
    there are depends on the runtime, not on the file."""
    return [op for op in interpreter._get_ops_details() if op["op_name"] != "DELEGATE"]


def _limits(detail: dict) -> tuple[float, float] | None:
    """``(lowest, highest)`` dequantized value of an integer tensor (``detail`` as the interpreter
    gives it), computed as ``TFLiteModel.predict`` dequantizes; None for a float tensor."""
    dtype = np.dtype(detail["dtype"])
    scale, zero_point = detail.get("quantization", (0.0, 0))
    if dtype.type not in _QUANTIZED_TYPES or not scale:
        return None
    info = np.iinfo(dtype)
    low, high = ((np.float32(v) - zero_point) * np.float32(scale) for v in (info.min, info.max))
    return float(low), float(high)


def at_limits(outputs: np.ndarray, limits: tuple[float, float] | None) -> np.ndarray:
    """Which ``outputs`` (dequantized, as ``TFLiteModel.predict`` returns them) sit exactly at one of
    the integer output's ``limits`` other than 0: clipped there, unless the model's value happens
    to equal it. (0 is left out: a ReLU output sits there by design.)"""
    out = np.asarray(outputs, np.float32)
    if limits is None:
        return np.zeros(out.shape, bool)
    return np.logical_or.reduce([out == np.float32(v) for v in limits if v != 0] + [np.zeros(out.shape, bool)])


def clipping_warning(outputs: np.ndarray, limits: tuple[float, float] | None, metadata: dict | None) -> str | None:
    """One line when outputs of a regression model sit at a limit of its integer output (see
    ``at_limits``): the model's value may lie beyond it. None otherwise (other tasks: a probability
    at 1.0 is not clipped)."""
    if (metadata or {}).get("task") != "regression" or limits is None:
        return None
    hit = at_limits(outputs, limits)
    if not hit.any():
        return None
    values = sorted({float(v) for v in np.asarray(outputs, np.float32)[hit]})
    return (
        f"{int(hit.sum())} of {hit.size} outputs lie at the limit of the model's integer output "
        f"({' and '.join(f'{v:.6g}' for v in values)}; it covers [{limits[0]:.6g}, {limits[1]:.6g}]): "
        "the true value may lie beyond it, clipped; see the export's output range in model.json"
    )


def _detection_outputs(interpreter) -> dict | None:
    """``{output name: tensor index}`` of a detector's ``DETECTION_OUTPUTS`` (read from its
    signature), or None where the model has not exactly those outputs."""
    if len(interpreter.get_output_details()) != len(DETECTION_OUTPUTS):
        return None
    for signature in interpreter._get_full_signature_list().values():
        outputs = signature.get("outputs", {})
        if set(outputs) == set(DETECTION_OUTPUTS):
            return {name: int(outputs[name]) for name in DETECTION_OUTPUTS}
    return None


def latency_percentiles(latencies_ms: np.ndarray) -> dict:
    """{"p50_ms", "p90_ms", "mean_ms", "runs"} of per-invocation latencies."""
    ms = np.asarray(latencies_ms, dtype=np.float64)
    p50, p90 = np.percentile(ms, [50, 90])
    return {"p50_ms": float(p50), "p90_ms": float(p90), "mean_ms": float(ms.mean()), "runs": int(ms.size)}


class TFLiteModel:
    """One-input, one-output .tflite model, or a detector with the four ``DETECTION_OUTPUTS``.

    `predict` takes and returns float32 arrays with a leading batch axis; integer models get their
    input quantized and their output dequantized with the tensors' own scale and zero point. A
    detector's outputs come packed as ``(batch, K, 6)`` rows ``ymin, xmin, ymax, xmax, class,
    score`` (rows past its count: class -1, score 0); ``detector`` says whether the model is one.
    """

    def __init__(self, path: str | Path, num_threads: int = 1):
        self.path = Path(path)
        self.num_threads = num_threads
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such file")
        from ai_edge_litert.interpreter import Interpreter

        try:
            with _without_runtime_noise():
                self._interpreter = Interpreter(model_path=str(self.path), num_threads=num_threads)
                self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise ValueError(f"{self.path}: not a valid .tflite model ({_first_line(e)})") from e
        inputs = self._interpreter.get_input_details()
        outputs = self._interpreter.get_output_details()
        if not inputs or not outputs:
            raise ValueError(f"{self.path}: model has {len(inputs)} inputs and {len(outputs)} outputs")
        self._input = inputs[0]
        self._output_index = outputs[0]["index"]
        self._detection = _detection_outputs(self._interpreter)
        signature = self._input["shape_signature"]
        if len(signature) == 0:
            raise ValueError(f"{self.path}: model input is a scalar; expected a leading batch axis")
        self._dynamic_batch = signature[0] == -1
        self._fixed_batch = None if self._dynamic_batch else int(self._input["shape"][0])
        # The shape the input tensor is allocated for; resizing re-allocates, so skip it when unchanged.
        self._allocated_shape = tuple(int(d) for d in self._input["shape"])
        self.metadata = load_metadata(self.path)
        self.labels = load_labels(self.path, self.metadata)

    def __repr__(self) -> str:
        return f"TFLiteModel({str(self.path)!r}, input={self.input_shape} {self.input_dtype})"

    # -- description -------------------------------------------------------------------------------
    @property
    def input_details(self) -> dict:
        return self._interpreter.get_input_details()[0]

    @property
    def output_details(self) -> dict:
        return self._interpreter.get_output_details()[0]

    @property
    def detector(self) -> bool:
        """Whether the model returns detections (the four ``DETECTION_OUTPUTS``)."""
        return self._detection is not None

    @property
    def input_shape(self) -> tuple:
        """Input shape without the batch axis; -1 marks a dynamic dimension."""
        return tuple(int(d) for d in self._input["shape_signature"][1:])

    @property
    def input_dtype(self) -> np.dtype:
        return np.dtype(self._input["dtype"])

    @property
    def output_dtype(self) -> np.dtype:
        return np.dtype(self.output_details["dtype"])

    @property
    def size_bytes(self) -> int:
        return self.path.stat().st_size

    def ops(self) -> list[dict]:
        """The model's ops in execution order (``model_ops``)."""
        return model_ops(self._interpreter)

    def op_names(self) -> list[str]:
        """Op names in execution order, e.g. to assert there is no Flex op or DEQUANTIZE."""
        return [op["op_name"] for op in self.ops()]

    def float_ops(self) -> dict[str, int]:
        """``{op name: count}`` of the ops that compute in float inside an integer model: ops other
        than the QUANTIZE/DEQUANTIZE seams with a float output (a ``DEQUANTIZE → ELU → QUANTIZE``
        island, or a layer kept float on purpose). Empty for a model with no integer tensor."""
        dtypes = {t["index"]: np.dtype(t["dtype"]) for t in self._interpreter.get_tensor_details()}
        if not any(d.type in _QUANTIZED_TYPES for d in dtypes.values()):
            return {}
        found: dict[str, int] = {}
        for op in self.ops():
            if op["op_name"] in _SEAMS:
                continue
            if any(int(i) >= 0 and dtypes[int(i)].kind == "f" for i in op["outputs"]):
                found[op["op_name"]] = found.get(op["op_name"], 0) + 1
        return found

    @property
    def output_limits(self) -> tuple[float, float] | None:
        """``(lowest, highest)`` value the output can take where an integer tensor makes it (an
        integer output, or a float output dequantized from one): a prediction beyond it is clipped to
        it. None where the output is computed in float."""
        detail = self.output_details
        if not _limits(detail):
            producer = next((op for op in self.ops() if self._output_index in op["outputs"]), None)
            if producer is None or producer["op_name"] != "DEQUANTIZE":
                return None
            detail = self._interpreter._get_tensor_details(int(producer["inputs"][0]), 0)
        return _limits(detail)

    def tensor_dtypes(self) -> list[dict]:
        """[{"index", "name", "dtype"}] for every tensor; dtype is a numpy name such as "int8"."""
        return [
            {"index": t["index"], "name": t["name"], "dtype": np.dtype(t["dtype"]).name}
            for t in self._interpreter.get_tensor_details()
        ]

    @property
    def input_range(self) -> tuple[float, float] | None:
        """(min, max) of the training inputs, as the metadata records them; None if it does not."""
        return _numbers((self.metadata or {}).get("input_range"), "min", "max")

    @property
    def normalization(self) -> tuple[float, float] | None:
        """(scale, offset) that turned raw values into the training inputs (``raw * scale + offset``),
        as the metadata records it; None where it does not (not known at export)."""
        return _numbers((self.metadata or {}).get("normalization"), "scale", "offset")

    def normalize(self, x: np.ndarray) -> np.ndarray:
        """``x`` (raw values: 0-255 pixels; a table's raw column values) prepared as the training
        inputs were, float32: the recorded ``normalization`` (``raw * scale + offset``), else a table's
        column standardization (``preprocessing.columns``: numeric columns only; rows with text
        columns go through ``encode_table``). A ValueError when the metadata records neither."""
        columns = table_columns(self.metadata)
        if self.normalization is None and columns is not None:
            return standardize(x, columns, str(self.path))
        if self.normalization is None:
            raise ValueError(
                f"{self.path}: its metadata records no input normalization (the dataset's scaling was not "
                "known at export); scale the input yourself"
                + (" to the training range [{:.6g}, {:.6g}]".format(*self.input_range) if self.input_range else "")
            )
        scale, offset = self.normalization
        return (np.asarray(x, dtype=np.float32) * np.float32(scale) + np.float32(offset)).astype(np.float32)

    def encode_table(self, path: str | Path) -> np.ndarray:
        """The rows of the CSV file at ``path`` (a header row naming the columns) encoded as the
        training table was: the column encodings of a ``csv`` model's metadata, one-hot included."""
        columns = table_columns(self.metadata)
        if columns is None:
            raise ValueError(
                f"{self.path}: its metadata records no table columns (a model trained on the csv dataset "
                "does); give the inputs as a .npy array"
            )
        header, rows = read_rows(path)
        return encode_rows(header, rows, columns, str(path))

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        """``texts`` as the int32 token ids the model takes, tokenized with the vocabulary and rule
        its metadata records (``tflite.text``: as the training text dataset tokenized them)."""
        tokenizer = tokenizer_from_metadata(self.metadata, str(self.path))
        if self.input_shape not in ((tokenizer.length,), (-1,)):
            raise ValueError(
                f"{self.path}: its tokenizing rule makes {tokenizer.length} token ids of a text, but the model "
                f"takes inputs of shape {self.input_shape}"
            )
        return tokenizer.encode(texts)

    def encode_wav(self, path: str | Path) -> np.ndarray:
        """The WAV clip in ``path`` as the waveforms the model takes (``tflite.audio``): mono,
        resampled to the sample rate its metadata records, cut into consecutive windows of its clip
        length (the last one zero-padded): one row per window, shaped (windows, *input_shape)."""
        spec = audio_spec(self.metadata)
        if spec is None:
            raise ValueError(
                f"{self.path}: its metadata records no audio sample rate; a .wav input is for a model trained on "
                "an audio dataset (sounds, audio_folder)"
            )
        rate, samples = spec
        if int(np.prod([d for d in self.input_shape if d != -1])) != samples:
            raise ValueError(
                f"{self.path}: its metadata says {samples} samples a clip, the model takes {self.input_shape}"
            )
        x, found = read_wav(path)
        x = resample(x, found, rate)
        windows = max(1, -(-len(x) // samples))
        x = np.stack([fit_length(x[i * samples : (i + 1) * samples], samples) for i in range(windows)])
        return x.reshape((windows, *(samples if d == -1 else d for d in self.input_shape)))

    # -- inference ---------------------------------------------------------------------------------
    def predict(self, x: np.ndarray) -> np.ndarray:
        """float32 outputs for a batch of inputs shaped (batch, *input_shape)."""
        x = self._check_batch(x)
        xq = self._quantize(x)
        if self._dynamic_batch:
            return self._dequantize(self._invoke(xq))
        b = self._fixed_batch
        outputs = []
        for start in range(0, len(xq), b):
            chunk = xq[start : start + b]
            n = len(chunk)
            if n < b:  # a fixed batch larger than what is left: pad, then drop the padding's outputs
                chunk = np.concatenate([chunk, np.zeros((b - n,) + chunk.shape[1:], chunk.dtype)])
            outputs.append(self._invoke(chunk)[:n])
        return self._dequantize(np.concatenate(outputs))

    def latencies_ms(self, x: np.ndarray, runs: int = 100, warmup: int = 10) -> np.ndarray:
        """Per-invocation latencies in ms of single-sample runs on `x` (one sample, or a batch's first).

        Each timing covers set_tensor + invoke + get_tensor, what one device call costs; input
        quantization happens once, outside the timed loop.
        """
        x = np.asarray(x)
        if x.ndim == len(self.input_shape):
            x = x[None]
        one = self._quantize(self._check_batch(x)[:1])
        if self._fixed_batch not in (None, 1):
            one = np.repeat(one, self._fixed_batch, axis=0)
        self._ensure_shape(one.shape)
        interp, index = self._interpreter, self._input["index"]
        times = np.empty(runs, dtype=np.float64)
        for i in range(-warmup, runs):
            start = time.perf_counter()
            interp.set_tensor(index, one)
            interp.invoke()
            interp.get_tensor(self._output_index)
            if i >= 0:
                times[i] = (time.perf_counter() - start) * 1e3
        return times

    def benchmark(self, x: np.ndarray, runs: int = 100, warmup: int = 10) -> dict:
        """latency_percentiles of `latencies_ms`, plus the thread count."""
        result = latency_percentiles(self.latencies_ms(x, runs=runs, warmup=warmup))
        result["threads"] = self.num_threads
        return result

    # -- internals ---------------------------------------------------------------------------------
    def _check_batch(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        expected = self.input_shape
        ok = x.ndim == len(expected) + 1 and all(e in (-1, d) for e, d in zip(expected, x.shape[1:]))
        if not ok or len(x) == 0:
            want = "(batch, " + ", ".join("?" if d == -1 else str(d) for d in expected) + ")"
            raise ValueError(f"{self.path}: model expects input of shape {want}, received {x.shape}")
        return x

    def _quantize(self, x: np.ndarray) -> np.ndarray:
        dtype = self.input_dtype
        if x.dtype == dtype:  # already in the model's own type (e.g. pre-quantized int8)
            return x
        scale, zero_point = self._input["quantization"]
        x = x.astype(np.float32)
        if dtype.type in _QUANTIZED_TYPES and scale:
            info = np.iinfo(dtype)
            x = np.clip(np.round(x / scale + zero_point), info.min, info.max)
        return x.astype(dtype)

    def _dequantize(self, y: np.ndarray) -> np.ndarray:
        scale, zero_point = self.output_details["quantization"]
        if y.dtype.type in _QUANTIZED_TYPES and scale:
            return ((y.astype(np.float32) - zero_point) * np.float32(scale)).astype(np.float32)
        return y.astype(np.float32)

    def _ensure_shape(self, shape: tuple) -> None:
        if tuple(shape) != self._allocated_shape:
            self._interpreter.resize_tensor_input(self._input["index"], list(shape))
            self._interpreter.allocate_tensors()
            self._allocated_shape = tuple(shape)

    def _invoke(self, x: np.ndarray) -> np.ndarray:
        self._ensure_shape(x.shape)
        self._interpreter.set_tensor(self._input["index"], x)
        self._interpreter.invoke()
        if self._detection is not None:
            return self._detections()
        return self._interpreter.get_tensor(self._output_index)

    def _detections(self) -> np.ndarray:
        """The detector's outputs packed as rows (see the class); ``_dequantize`` leaves them float."""
        boxes, classes, scores, count = (
            np.asarray(self._interpreter.get_tensor(self._detection[name]), np.float32) for name in DETECTION_OUTPUTS
        )
        rows = np.concatenate([boxes, classes[..., None], scores[..., None]], axis=-1)
        past = np.arange(rows.shape[1])[None, :] >= count.reshape(-1, 1)
        rows[past] = 0.0
        rows[..., 4][past] = -1.0
        return rows
