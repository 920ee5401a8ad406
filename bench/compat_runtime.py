"""Run .tflite files on whichever interpreter this Python has: tflite-runtime (the side venv of
`make compat`, numpy < 2) or else ai_edge_litert (the project's venv). Imports only numpy and that
interpreter, so the same code runs on both sides and only the runtime differs.

    python bench/compat_runtime.py JOBS.json OUT.json

JOBS.json: ``[{"file": ".tflite", "inputs": ".npz"}, ...]``; the .npz holds one array per model
input (``in0``, ``in1``, ...) as the Keras model takes it (float), or already in the tensor's type.
Each file's outputs go to ``<inputs>.<runtime>.npz`` (dequantized to float32); OUT.json says per file
whether it loaded and ran, or the runtime's error, and its outputs' quantization step (0: float).
"""

import json
import sys

import numpy as np

try:
    from tflite_runtime import __version__ as VERSION
    from tflite_runtime.interpreter import Interpreter

    RUNTIME = "tflite_runtime"
except ImportError:
    from ai_edge_litert.interpreter import Interpreter

    RUNTIME = "ai_edge_litert"
    VERSION = "?"

INTEGER = (np.int8, np.uint8, np.int16)


def to_tensor(x, detail):
    """``x`` in the input tensor's type: quantized with its scale and zero point where it has them."""
    dtype = np.dtype(detail["dtype"])
    x = np.asarray(x)
    if x.dtype == dtype:
        return x
    scale, zero_point = detail["quantization"]
    if dtype.type in INTEGER and scale:
        info = np.iinfo(dtype)
        x = np.clip(np.round(x.astype(np.float32) / scale + zero_point), info.min, info.max)
    return x.astype(dtype)


def from_tensor(y, detail):
    scale, zero_point = detail["quantization"]
    if y.dtype.type in INTEGER and scale:
        return ((y.astype(np.float32) - zero_point) * np.float32(scale)).astype(np.float32)
    return y.astype(np.float32)


def run(path, inputs_path):
    """Load ``path``, run every sample of the inputs one at a time; the outputs' file."""
    interpreter = Interpreter(model_path=path, num_threads=1)
    interpreter.allocate_tensors()
    ins, outs = interpreter.get_input_details(), interpreter.get_output_details()
    arrays = np.load(inputs_path)
    xs = [arrays[f"in{i}"] for i in range(len(ins))]
    results = [[] for _ in outs]
    for n in range(len(xs[0])):
        for detail, x in zip(ins, xs):
            one = to_tensor(x[n : n + 1], detail)
            if tuple(one.shape) != tuple(detail["shape"]):
                interpreter.resize_tensor_input(detail["index"], list(one.shape))
                interpreter.allocate_tensors()
                ins = interpreter.get_input_details()
                detail = next(d for d in ins if d["index"] == detail["index"])
            interpreter.set_tensor(detail["index"], one)
        interpreter.invoke()
        for k, detail in enumerate(outs):
            results[k].append(from_tensor(interpreter.get_tensor(detail["index"]), detail))
    out_path = f"{inputs_path}.{RUNTIME}.npz"
    np.savez(out_path, **{f"out{k}": np.concatenate(r) for k, r in enumerate(results)})
    return out_path, max(float(d["quantization"][0]) for d in outs)


def main():
    with open(sys.argv[1]) as f:
        jobs = json.load(f)
    report = {"runtime": RUNTIME, "version": VERSION, "numpy": np.__version__, "files": {}}
    for job in jobs:
        entry = {"loads": False, "runs": False}
        try:
            interpreter = Interpreter(model_path=job["file"])
            interpreter.allocate_tensors()
            entry["loads"] = True
            entry["outputs"], entry["output_scale"] = run(job["file"], job["inputs"])
            entry["runs"] = True
        except Exception as exc:  # the runtime's own words go into the table
            entry["error"] = " ".join(str(exc).split())[:300]
        report["files"][job["file"]] = entry
        print(json.dumps({job["file"]: entry}), flush=True)
    with open(sys.argv[2], "w") as f:
        json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
