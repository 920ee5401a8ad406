"""`make bench-edge`: the edge-deployment goals measured side by side in one run; writes
bench/edge.md and bench/edge.json. Not run by CI (minutes of training and fine-tuning).

For each model it trains once under TensorFlow, then exports every post-training variant, native and
tfmot quantization-aware training, and 50 % magnitude pruning (float32 and int8), and verifies every
file on the LiteRT runtime against the Keras float model on the test split (latency: single-sample
``invoke()`` at 1 and 2 threads, the variants of one model measured one after another).

    python bench/edge.py [--only cnn/digits] [--epochs-scale 1.0]
"""

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
MODELS = {
    "cnn/digits": dict(arch="cnn", data="digits", hparams={}, data_options={}, epochs=15),
    # ≥ 1 M parameters: a MobileNetV2 of four stages on 32×32 shapes.
    "mobilenet/shapes32": dict(
        arch="mobilenet",
        data="shapes",
        hparams={"filters": (32, 64, 128, 256), "blocks": (1, 2, 3, 2), "expansion": 6},
        data_options={"size": 32, "samples": 2000},
        epochs=10,
    ),
}
EXPORTS = [  # (label, exporter options)
    ("ptq", {"quantize": "all"}),
    ("ptq-per-tensor", {"quantize": "int8", "per_channel": False}),
    ("qat-native", {"qat": "native", "qat_epochs": 2}),
    ("qat-tfmot", {"qat": "tfmot", "qat_epochs": 2}),
    ("pruned50", {"prune": 0.5, "prune_epochs": 2, "quantize": "none,int8"}),
]


def measure(name, model, epochs_scale, run_dir=None):
    import shutil

    from core import export, load_run, train, verify

    started = time.perf_counter()
    if run_dir:  # measure the exports of a run trained before (its old exports are replaced)
        shutil.rmtree(Path(run_dir) / "export" / "tflite", ignore_errors=True)
        run = load_run(run_dir)
    else:
        root = Path(tempfile.mkdtemp(prefix="edge-"))
        run = train(
            model["arch"],
            model["data"],
            backend="tensorflow",
            hparams=model["hparams"],
            data_options=model["data_options"],
            epochs=max(1, round(model["epochs"] * epochs_scale)),
            seed=0,
            out=root / "run",
            verbose=0,
        )
    result = {
        "model": name,
        "params": run.metrics["total_params"],
        "epochs": run.metrics["epochs"],
        "train_s": round(run.metrics["seconds"] if run_dir else time.perf_counter() - started, 1),
        "files": {},
    }
    print(json.dumps({k: v for k, v in result.items() if k != "files"}), flush=True)
    for label, options in EXPORTS:
        started = time.perf_counter()
        try:
            paths = export(run.path, "tflite", options)
        except Exception as exc:  # report it, keep measuring the rest
            result["files"][label] = {"error": " ".join(str(exc).split())[:200]}
            continue
        seconds = round(time.perf_counter() - started, 1)
        meta = json.loads((run.path / "export" / "tflite" / "model.json").read_text())["files"]
        for path in (p for p in paths if p.suffix == ".tflite"):
            row = {"export": label, "export_s": seconds}
            for threads in (1, 2):
                v = verify(path, run.path, threads=threads, latency_runs=300)
                row[f"p50_ms_{threads}t"] = v["latency_ms_p50"]
            row.update(
                size=v["size_bytes"],
                gzip=meta[path.name]["gzip_bytes"],
                accuracy=v["tflite_accuracy"],
                keras=v["keras_accuracy"],
                agreement=v["agreement"],
                max_abs_diff=v["max_abs_diff"],
            )
            pruning = meta[path.name].get("pruning")
            if pruning:  # the kernels' share of zeros, averaged over the pruned layers
                values = list((pruning.get("sparsity") or {}).values())
                row["sparsity"] = round(sum(values) / len(values), 3) if values else None
            result["files"][path.name] = row
            print(json.dumps({path.name: row}), flush=True)
    return result


def goals(r):
    """``[(goal, measured, met)]`` for one model (see issue 4)."""
    f = r["files"]
    base = f["model_float32.tflite"]
    keras = base["keras"]
    out = []

    def ratio(name, key, limit, what):
        if name in f and "size" in f[name]:
            value = f[name][key] / base[key]
            out.append((f"{what} ≤ {limit}× float32", f"{value:.3f}×", value <= limit))

    ratio("model_int8.tflite", "size", 0.26, "int8 size")
    ratio("model_dynamic.tflite", "size", 0.27, "dynamic size")
    ratio("model_float16.tflite", "size", 0.52, "float16 size")
    ratio("model_int8-pertensor.tflite", "size", 0.26, "int8 per-tensor size")
    if "model_int8.tflite" in f:
        speedup = base["p50_ms_2t"] / f["model_int8.tflite"]["p50_ms_2t"]
        out.append(("int8 ≥ 2× faster than float32 at 2 threads", f"{speedup:.2f}×", speedup >= 2))
    out.append(("float32 max abs diff ≤ 1e-5", f"{base['max_abs_diff']:.1e}", base["max_abs_diff"] <= 1e-5))
    ptq = f.get("model_int8.tflite", {}).get("accuracy")
    if ptq is not None:
        out.append(("PTQ int8 accuracy within 1 point of Keras", f"{ptq:.4f} vs {keras:.4f}", ptq >= keras - 0.01))
    for method in ("native", "tfmot"):
        row = f.get(f"model_int8-qat-{method}.tflite")
        if row:
            ok = row["accuracy"] >= keras - 0.003 and (ptq is None or row["accuracy"] >= ptq)
            out.append(
                (f"{method} QAT within 0.3 point of Keras and ≥ PTQ", f"{row['accuracy']:.4f} (PTQ {ptq:.4f})", ok)
            )
        elif f"qat-{method}" in f:
            out.append((f"{method} QAT", f["qat-" + method]["error"], False))
    pruned = f.get("model_float32-pruned50.tflite")
    if pruned:
        value = pruned["gzip"] / base["gzip"]
        out.append(
            ("50 % pruning: gzip ≤ 0.55× dense", f"{value:.3f}× (sparsity {pruned.get('sparsity')})", value <= 0.55)
        )
        out.append(
            (
                "50 % pruning: accuracy within 0.3 point",
                f"{pruned['accuracy']:.4f} vs {keras:.4f}",
                pruned["accuracy"] >= keras - 0.003,
            )
        )
    return out


def write(results):
    (HERE / "edge.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        "# Edge deployment",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} CPU cores by `make bench-edge` "
        "(LiteRT latency: median single-sample invoke).",
        "",
    ]
    for r in results:
        lines += [
            f"## {r['model']} ({r['params']:,} parameters, {r['epochs']} epochs, trained in {r['train_s']} s)",
            "",
            "| file | KiB | gzip KiB | accuracy | agreement | max abs diff | p50 ms 1t | p50 ms 2t |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, row in r["files"].items():
            if "error" in row:
                lines.append(f"| {name} | error: {row['error']} | | | | | | |")
                continue
            lines.append(
                f"| {name} | {row['size'] / 1024:.1f} | {row['gzip'] / 1024:.1f} | {row['accuracy']:.4f} | "
                f"{row['agreement']:.4f} | {row['max_abs_diff']:.1e} | {row['p50_ms_1t']:.3f} | "
                f"{row['p50_ms_2t']:.3f} |"
            )
        keras = next(iter(r["files"].values())).get("keras")
        lines += ["", f"Keras float accuracy: {keras:.4f}", "", "| goal | measured | met |", "|---|---|---|"]
        lines += [f"| {g} | {m} | {'yes' if ok else '**no**'} |" for g, m, ok in goals(r)]
        lines.append("")
    (HERE / "edge.md").write_text("\n".join(lines))
    print("\n".join(lines))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help="comma-separated model names")
    parser.add_argument("--epochs-scale", type=float, default=1.0)
    parser.add_argument("--runs", default="", help="NAME=RUN_DIR,...: reuse trained runs (no training)")
    args = parser.parse_args()
    os.environ["KERAS_BACKEND"] = "tensorflow"
    only = set(filter(None, args.only.split(",")))
    runs = dict(pair.split("=", 1) for pair in filter(None, args.runs.split(",")))
    write(
        [
            measure(name, model, args.epochs_scale, runs.get(name))
            for name, model in MODELS.items()
            if not only or name in only
        ]
    )


if __name__ == "__main__":
    main()
