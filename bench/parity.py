"""`make parity`: backend × converter × mode, every LiteRT file against the Keras model it came from;
then the outlier net whose post-training int8 collapses, through each remedy side by side. Writes
bench/parity.md and bench/parity.json. Not run by CI (minutes).

Each backend gets a process of its own (``--backend``): it trains the digits cnn there, exports
(the TFLite converter runs in a TensorFlow child process) and verifies each file on LiteRT against
the Keras model **in that backend** (max abs diff, accuracy on the test split, single-sample p50
latency at 1 thread). XNNPACK's share: the fraction of the file's ops that the XNNPACK delegate
(LiteRT's default CPU delegate) takes over, read from the interpreter's delegate nodes.

    python bench/parity.py [--backends tensorflow,jax,torch] [--epochs 4] [--skip-collapse]

The converter axis: the TFLite converter (from a SavedModel, builtin ops). litert-torch, which Keras
3.15's own ``model.export(format="litert")`` uses under torch, is not installed: it pins
typing-extensions below what this stack needs and weighs 107 MB; its column says so.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
REPO = HERE.parent
OUTLIER = REPO / "tests" / "plugins" / "deployment" / "tflite"  # the outlier net of the tests
MODES = [  # (mode, exporter options, file)
    ("float32", {"quantize": "none"}, "model_float32.tflite"),
    ("float16", {"quantize": "float16"}, "model_float16.tflite"),
    ("dynamic", {"quantize": "dynamic"}, "model_dynamic.tflite"),
    ("int8", {"quantize": "int8"}, "model_int8.tflite"),
    ("int16x8", {"quantize": "int16x8"}, "model_int16x8.tflite"),
    ("mixed", {"quantize": "int8", "keep_float": "auto"}, "model_int8-mixed.tflite"),
]
REMEDIES = [  # the collapsing case: (label, exporter options, file)
    ("float32", {"quantize": "none"}, "model_float32.tflite"),
    ("int8 PTQ, per-channel weights", {"quantize": "int8"}, "model_int8.tflite"),
    ("int8 PTQ, per-tensor weights", {"quantize": "int8", "per_channel": False}, "model_int8-pertensor.tflite"),
    ("int16x8 (16-bit activations)", {"quantize": "int16x8"}, "model_int16x8.tflite"),
    ("int8 QAT native, 2 epochs", {"qat": "native", "qat_epochs": 2}, "model_int8-qat-native.tflite"),
    ("int8 keep_float=auto", {"quantize": "int8", "keep_float": "auto"}, "model_int8-mixed.tflite"),
]
LITERT_TORCH = "not installed: litert-torch pins typing-extensions below this stack's and weighs 107 MB"


def xnnpack_share(path):
    """The fraction of the file's ops that XNNPACK takes over (its DELEGATE nodes' partitions)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    ops = interpreter._get_ops_details()
    original = [op for op in ops if op["op_name"] != "DELEGATE"]
    producer = {int(t): op["index"] for op in original for t in op["outputs"]}
    by_index = {op["index"]: op for op in original}
    delegated = set()
    for node in (op for op in ops if op["op_name"] == "DELEGATE"):
        inputs = {int(t) for t in node["inputs"]}
        stack = [int(t) for t in node["outputs"]]
        while stack:  # walk back from the partition's outputs to its inputs
            tensor = stack.pop()
            index = producer.get(tensor)
            if tensor in inputs or index is None or index in delegated:
                continue
            delegated.add(index)
            stack += [int(t) for t in by_index[index]["inputs"] if int(t) >= 0]
    return len(delegated) / len(original) if original else 0.0


def measure_backend(backend, epochs, out):
    """In this process (``backend``): train, export every mode, verify each file."""
    from core import export, train, verify

    run = train("cnn", "digits", backend=backend, epochs=epochs, seed=0, out=out, verbose=0)
    rows = []
    for mode, options, name in MODES:
        row = {"backend": backend, "converter": "tflite", "mode": mode}
        try:
            export(run.path, "tflite", options)
            path = run.path / "export" / "tflite" / name
            v = verify(path, run.path, latency_runs=200)
            meta = json.loads((path.parent / "model.json").read_text())["files"][name]
            row.update(
                size_kib=v["size_bytes"] / 1024,
                max_abs_diff=v["max_abs_diff"],
                accuracy=v.get("tflite_accuracy"),
                keras_accuracy=v.get("keras_accuracy"),
                p50_ms=v["latency_ms_p50"],
                xnnpack=xnnpack_share(path),
                float_layers=(meta.get("mixed") or {}).get("float_layers"),
            )
        except Exception as exc:  # the cell says what failed; the others are still measured
            row["error"] = " ".join(str(exc).split())[:200]
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def measure_collapse(epochs, out):
    """The outlier net (tests/.../outlier_plugin.py) under TensorFlow through each remedy."""
    sys.path.insert(0, str(OUTLIER))
    from core import export, train, verify

    run = train(
        "outlier", "digits", backend="tensorflow", epochs=epochs, seed=0, out=out, plugins=["outlier_plugin"], verbose=0
    )
    rows = []
    for label, options, name in REMEDIES:
        row = {"remedy": label}
        try:
            export(run.path, "tflite", options)
            path = run.path / "export" / "tflite" / name
            v = verify(path, run.path, latency_runs=200)
            meta = json.loads((path.parent / "model.json").read_text())["files"][name]
            errors = meta.get("layer_errors") or (meta.get("mixed") or {}).get("all_int8_layer_errors") or []
            row.update(
                size_kib=v["size_bytes"] / 1024,
                accuracy=v.get("tflite_accuracy"),
                keras_accuracy=v.get("keras_accuracy"),
                max_abs_diff=v["max_abs_diff"],
                p50_ms=v["latency_ms_p50"],
                xnnpack=xnnpack_share(path),
                worst_layer=errors[0]["layer"] if errors else None,
                worst_snr_db=errors[0]["snr_db"] if errors else None,
                mixed={k: meta["mixed"][k] for k in ("float_layers", "int8_ops", "int8_weights")}
                if "mixed" in meta
                else None,
            )
        except Exception as exc:
            row["error"] = " ".join(str(exc).split())[:200]
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--skip-collapse", action="store_true")
    parser.add_argument("--backend", help=argparse.SUPPRESS)  # a child: measure this backend, print JSON
    parser.add_argument("--collapse", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.backend or args.collapse:
        rows = measure_collapse(20, args.out) if args.collapse else measure_backend(args.backend, args.epochs, args.out)
        Path(args.out + ".json").write_text(json.dumps(rows))
        return
    root = Path(tempfile.mkdtemp(prefix="parity-"))
    matrix, collapse = [], []
    jobs = [("--backend", b) for b in args.backends.split(",")] + ([] if args.skip_collapse else [("--collapse", None)])
    for flag, backend in jobs:
        out = root / (backend or "collapse")
        cmd = [sys.executable, __file__, flag, *([backend] if backend else []), "--out", str(out)]
        cmd += ["--epochs", str(args.epochs)]
        env = dict(os.environ, KERAS_BACKEND=backend or "tensorflow")
        proc = subprocess.run(cmd, env=env, cwd=REPO)
        result = Path(str(out) + ".json")
        rows = json.loads(result.read_text()) if proc.returncode == 0 and result.exists() else []
        if backend:
            matrix += rows or [
                {"backend": backend, "converter": "tflite", "mode": "all", "error": f"exit {proc.returncode}"}
            ]
        else:
            collapse = rows
    for backend in args.backends.split(","):
        if backend == "torch":
            matrix.append({"backend": backend, "converter": "litert-torch", "mode": "all", "error": LITERT_TORCH})
    write(matrix, collapse)


def write(matrix, collapse):
    (HERE / "parity.json").write_text(json.dumps({"matrix": matrix, "collapse": collapse}, indent=2) + "\n")
    f = lambda v, spec: "—" if v is None else format(v, spec)  # noqa: E731
    lines = [
        "# Parity: backend × converter × mode",
        "",
        "`make parity` (bench/parity.py). The digits cnn trained 4 epochs under each backend; each file",
        "verified on LiteRT against the Keras model in that backend, on the test split (270 samples).",
        "p50: single-sample `invoke()`, 1 thread, on a 2-core CPU shared with other jobs (compare within a",
        "column, not across runs). XNNPACK: the share of the file's ops the XNNPACK delegate takes over.",
        "",
        "| backend | converter | mode | size KiB | max abs diff | accuracy (Keras) | p50 ms | XNNPACK |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in matrix:
        if "error" in r:
            lines.append(f"| {r['backend']} | {r['converter']} | {r['mode']} | {r['error']} | | | | |")
            continue
        mode = r["mode"] + (
            f" (float: {', '.join(r['float_layers']) or 'none'})" if r.get("float_layers") is not None else ""
        )
        lines.append(
            f"| {r['backend']} | {r['converter']} | {mode} | {r['size_kib']:.1f} | {r['max_abs_diff']:.2g} | "
            f"{f(r['accuracy'], '.4f')} ({f(r['keras_accuracy'], '.4f')}) | {r['p50_ms']:.3f} | {r['xnnpack']:.0%} |"
        )
    if collapse:
        lines += [
            "",
            "## The collapsing case, side by side",
            "",
            "The outlier net (tests/plugins/deployment/tflite/outlier_plugin.py): its first layer `stem` has",
            "one output channel at ~1000 that the next layer `mix` ignores. Trained 20 epochs under",
            "TensorFlow on digits; test split. Worst layer: the top of the file's per-layer table (int8:",
            "each layer's own error; int16x8: accumulated, against the float32 file).",
            "",
            "| remedy | size KiB | accuracy (Keras) | max abs diff | p50 ms | XNNPACK | worst layer (SNR dB) | int8 share |",
            "|---|---:|---:|---:|---:|---:|---|---|",
        ]
        for r in collapse:
            if "error" in r:
                lines.append(f"| {r['remedy']} | {r['error']} | | | | | | |")
                continue
            worst = f"`{r['worst_layer']}` ({r['worst_snr_db']:.1f})" if r.get("worst_layer") else "—"
            m = r.get("mixed")
            share = (
                f"float: {', '.join(m['float_layers'])}; ops {m['int8_ops']:.0%}, weights {m['int8_weights']:.0%}"
                if m
                else "—"
            )
            lines.append(
                f"| {r['remedy']} | {r['size_kib']:.1f} | {f(r['accuracy'], '.4f')} ({f(r['keras_accuracy'], '.4f')}) | "
                f"{r['max_abs_diff']:.2g} | {r['p50_ms']:.3f} | {r['xnnpack']:.0%} | {worst} | {share} |"
            )
    (HERE / "parity.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
