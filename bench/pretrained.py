"""`make zoo-pretrained`: each keras.applications backbone through the transfer-learning recipe, then
float32 and int8 LiteRT. Writes bench/pretrained.md and bench/pretrained.json. Not run by CI.

Offline (no ImageNet download here) each backbone is "pretrained" on `shapes` from scratch
(weights=none), its BatchNorm statistics recomputed on the data, saved as a weights file; then the
recipe: weights=FILE, --freeze backbone, --fine-tune-after 1 (epochs 3), export none+int8, verify.
With --weights imagenet (online, or the files in KERAS_HOME/models) the first stage is skipped.

    python bench/pretrained.py [--only mobilenet_v3_small,resnet50] [--size 32] [--samples 450]
"""

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
SMALL = {"mobilenet_v2": {"alpha": 0.35}, "mobilenet_v3_small": {"alpha": 0.75}, "mobilenet_v3_large": {"alpha": 0.75}}


def recalibrate(model, x):
    """BatchNorm moving statistics set to what one training-mode pass over ``x`` sees."""
    import keras
    import numpy as np

    backbone = model.get_layer("backbone")
    norms = [layer for layer in backbone.layers if isinstance(layer, keras.layers.BatchNormalization)]
    if not norms:
        return
    probe = keras.Model(backbone.input, [layer.input for layer in norms])
    pixels = keras.Model(model.input, model.get_layer("pixel_preprocessing").output)
    seen_all = probe(pixels(x), training=True)
    for layer, seen in zip(norms, seen_all if isinstance(seen_all, list) else [seen_all]):
        seen = np.asarray(seen)
        gamma, beta, _, _ = layer.get_weights()
        layer.set_weights([gamma, beta, seen.mean((0, 1, 2)), seen.var((0, 1, 2))])


def measure(arch, root, args):
    from core import export, train, verify
    from plugins.datasets.shapes import load

    data = {"samples": args.samples, "size": args.size}
    extra = SMALL.get(arch, {}) if args.small else {}
    started = time.perf_counter()
    if args.weights == "imagenet":
        weights = "imagenet"
    else:
        base = train(arch, "shapes", epochs=args.epochs, seed=0, out=root / f"{arch}-base", verbose=0,
                     hparams={"weights": "none", **extra}, data_options=data, learning_rate=0.003,
                     checkpoint_every=0)  # fmt: skip
        recalibrate(base.model, load(**data).train[0][:256])
        weights = str(root / f"{arch}.weights.h5")
        base.model.get_layer("backbone").save_weights(weights)
    tuned = train(arch, "shapes", epochs=3, seed=1, out=root / arch, verbose=0, data_options=data,
                  hparams={"weights": weights, **extra}, freeze="backbone", fine_tune_after=1,
                  learning_rate=0.003, checkpoint_every=0)  # fmt: skip
    trained = time.perf_counter() - started
    files = [p for p in export(tuned.path, "tflite", {"quantize": "none,int8"}) if p.suffix == ".tflite"]
    row = {
        "arch": arch,
        "hparams": extra,
        "params": tuned.metrics["total_params"],
        "keras_test_accuracy": tuned.metrics.get("test_accuracy"),
        "train_seconds": round(trained, 1),
    }
    for path in files:
        name = "int8" if "int8" in path.name else "float32"
        result = verify(path, tuned.path, latency_runs=args.latency_runs)
        row[f"{name}_kib"] = round(path.stat().st_size / 1024, 1)
        row[f"{name}_agreement"] = result["agreement"]
        row[f"{name}_accuracy"] = result["tflite_accuracy"]
        row[f"{name}_p50_ms"] = round(result["latency_ms_p50"], 2)
    return row


def table(rows, args):
    head = (
        "| backbone | params | float32 KiB | int8 KiB | int8/float32 | Keras acc. | int8 acc. | int8 agreement "
        "| float32 p50 ms | int8 p50 ms |"
    )
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['arch']} | error: {r['error'][:120]} |" + " |" * 8)
            continue
        hp = ", ".join(f"{k}={v}" for k, v in r["hparams"].items())
        lines.append(
            f"| {r['arch']}{f' ({hp})' if hp else ''} | {r['params'] / 1e6:.2f} M | {r['float32_kib']:,.0f} | "
            f"{r['int8_kib']:,.0f} | {r['int8_kib'] / r['float32_kib']:.2f} | {r['keras_test_accuracy']:.3f} | "
            f"{r['int8_accuracy']:.3f} | {r['int8_agreement']:.3f} | {r['float32_p50_ms']} | {r['int8_p50_ms']} |"
        )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--samples", type=int, default=450)
    parser.add_argument("--epochs", type=int, default=5, help="epochs of the from-scratch stage")
    parser.add_argument("--weights", default="none", help="none (offline recipe above) or imagenet")
    parser.add_argument("--latency-runs", type=int, default=100)
    parser.add_argument("--full-width", dest="small", action="store_false", help="alpha=1 for the MobileNets")
    args = parser.parse_args()
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    from plugins.architectures.pretrained import BACKBONES

    only = [a for a in args.only.split(",") if a] or list(BACKBONES)
    root = Path(tempfile.mkdtemp(prefix="pretrained-"))
    rows = []
    for arch in only:
        print(f"{arch} ...", flush=True)
        try:
            rows.append(measure(arch, root, args))
        except Exception as exc:  # noqa: BLE001 - one backbone's failure is a row of the table
            rows.append({"arch": arch, "error": f"{type(exc).__name__}: {exc}"})
        print(json.dumps(rows[-1]), flush=True)
        write(rows, args)  # after each backbone: a stopped run keeps what it measured


def write(rows, args):
    settings = {k: v for k, v in vars(args).items() if k != "only"}
    (HERE / "pretrained.json").write_text(json.dumps({"settings": settings, "rows": rows}, indent=1) + "\n")
    text = (
        "# Pretrained backbones → int8 LiteRT (`make zoo-pretrained`)\n\n"
        f"Settings: {settings}. TensorFlow backend, `shapes` at {args.size}×{args.size} px, 3 classes. "
        "Weights: "
        + (
            "ImageNet"
            if args.weights == "imagenet"
            else "none (offline): each backbone trained from "
            "scratch first, BatchNorm statistics recomputed on the data, saved as the weights file"
        )
        + "; then "
        "weights=FILE, `--freeze backbone --fine-tune-after 1`, 3 epochs; export float32 and int8 (builtin ops), "
        "`verify` on the test split (agreement: int8 vs Keras argmax). Latency: one sample, 1 thread, p50.\n\n"
        + table(rows, args)
        + "\n"
    )
    (HERE / "pretrained.md").write_text(text)
    return text


if __name__ == "__main__":
    main()
