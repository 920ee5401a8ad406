"""`make zoo`: every architecture family on the data it is meant for, under each backend, then
exported to float32 and int8 LiteRT. Writes bench/zoo.md and bench/zoo.json. Not run by CI.

    python bench/zoo.py [--backends tensorflow,jax,torch] [--epochs-scale 1.0] [--only cnn,vit]
"""

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
# arch, dataset, hparams, data options, epochs, the validation metric to report[, the label of
# the data column, where one dataset appears twice]
FAMILIES = [
    ("mlp", "breast_cancer", {}, {}, 30, "val_accuracy"),
    ("cnn", "digits", {}, {}, 15, "val_accuracy"),
    ("resnet", "shapes", {}, {}, 10, "val_accuracy"),
    ("mobilenet", "shapes", {}, {}, 10, "val_accuracy"),
    ("lstm", "waves", {"frame": 4, "embed_dim": 32, "bidirectional": True}, {}, 20, "val_accuracy"),
    ("gru", "tokens", {}, {}, 15, "val_accuracy"),
    ("transformer", "tokens", {}, {}, 15, "val_accuracy"),
    ("vit", "digits", {"patch": 2}, {}, 20, "val_accuracy"),
    ("autoencoder", "digits", {}, {}, 15, "val_loss"),
    ("vae", "digits", {}, {}, 15, "val_loss"),
    ("diffusion", "digits", {}, {}, 10, "val_loss"),
    ("gan", "digits", {}, {}, 10, "g_loss"),
    ("unet", "shapes", {}, {"task": "segmentation"}, 10, "test_mean_iou"),
    ("tcn", "series", {}, {}, 20, "test_mae"),
    ("lstm", "series", {}, {}, 20, "test_mae"),
    (
        "yolo",
        "shapes",
        {"min_stride": 4},
        {"task": "detection", "size": 32, "samples": 1000, "boxes": 2},
        12,
        "test_map50",
    ),
    (  # issue 26's goal: mAP@0.5 >= 0.9 after a few minutes of training on 2 cores
        "yolo",
        "shapes",
        {"min_stride": 8},
        {"task": "detection", "size": 64, "samples": 4000, "boxes": 2},
        30,
        "test_map50",
        "shapes 64x64",
    ),
]


def label(family):
    """What the tables call a family's data: its dataset, or the label given beside it."""
    return family[6] if len(family) > 6 else family[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    parser.add_argument("--epochs-scale", type=float, default=1.0)
    parser.add_argument("--only", default="")
    parser.add_argument(
        "--append", action="store_true", help="keep the families already in bench/zoo.json; measure only the others"
    )
    args = parser.parse_args()
    only = set(filter(None, args.only.split(",")))
    backends = args.backends.split(",")
    root = Path(tempfile.mkdtemp(prefix="zoo-"))
    rows, edge = [], []
    if args.append and (HERE / "zoo.json").exists():
        known = json.loads((HERE / "zoo.json").read_text())
        rows, edge = known["training"], known["edge"]
    done = {(e["arch"], e["data"]) for e in edge}
    for family in FAMILIES:
        arch, data, hparams, options, epochs, metric = family[:6]
        shown = label(family)
        if only and arch not in only or (arch, shown) in done:
            continue
        epochs = max(1, round(epochs * args.epochs_scale))
        folder = f"{arch}-{shown.replace(' ', '-')}"
        for backend in backends:
            row = train_row(root / f"{folder}-{backend}", arch, data, backend, hparams, options, epochs, metric)
            rows.append({**row, "data": shown})
            print(json.dumps(rows[-1]), flush=True)
        edge.append({**edge_row(root / f"{folder}-{backends[0]}", arch, data), "data": shown})
        print(json.dumps(edge[-1]), flush=True)
        write(rows, edge)  # after each family: an interrupted run keeps what it measured


def train_row(out, arch, data, backend, hparams, options, epochs, metric):
    """Train ``arch`` on ``data`` under ``backend`` into ``out``: the row of the training table."""
    from core import train

    started = time.perf_counter()
    run = train(
        arch, data, backend=backend, hparams=hparams, data_options=options, epochs=epochs, seed=0, out=out, verbose=0
    )
    m = run.metrics
    return {
        "arch": arch,
        "data": data,
        "backend": backend,
        "params": m["total_params"],
        "epochs": m["epochs"],
        "epoch_s": m["seconds"] / m["epochs"],
        "metric": metric,
        "value": m.get(metric),
        "wall_s": time.perf_counter() - started,
    }


def edge_row(run_dir, arch, data):
    """The run exported to float32 and int8 TFLite and verified: the row of the edge table. The
    metric is the one the run's task is listed by (accuracy, mean IoU, MAE, …)."""
    from core import export, task_named, verify

    spec = json.loads((run_dir / "run.json").read_text()).get("spec", {})
    task = task_named(spec.get("task", ""), optional=True)
    key = task.metric[0] if task and task.metric else "accuracy"
    row = {"arch": arch, "data": data, "metric": key}
    for quantize in ("none", "int8"):
        try:
            lite = export(run_dir, "tflite", {"quantize": quantize})[0]
            v = verify(lite, run_dir)
            row[quantize] = {
                "size_kib": v["size_bytes"] / 1024,
                "accuracy": v.get(f"tflite_{key}"),
                "keras": v.get(f"keras_{key}"),
                "mse": v.get("tflite_mse"),
                "max_abs_diff": v["max_abs_diff"],
                "agreement": v.get("agreement"),
                "latency_ms": v.get("latency_ms_p50"),
            }
        except Exception as exc:  # report it in the table, keep going
            row[quantize] = {"error": " ".join(str(exc).split())[:160]}
    return row


def write(rows, edge):
    (HERE / "zoo.json").write_text(json.dumps({"training": rows, "edge": edge}, indent=2) + "\n")
    f = lambda v, p=3: "—" if v is None else f"{v:.{p}f}"  # noqa: E731
    order = [(f[0], label(f)) for f in FAMILIES]
    rows = sorted(rows, key=lambda r: order.index((r["arch"], r["data"])))
    edge = sorted(edge, key=lambda e: order.index((e["arch"], e["data"])))
    lines = [
        "# Model zoo",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} CPU cores by `make zoo`.",
        "",
        "| architecture | data | backend | parameters | s/epoch | epochs | validation metric |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['arch']} | {r['data']} | {r['backend']} | {r['params']:,} | {r['epoch_s']:.2f} | "
            f"{r['epochs']} | {r['metric']} {f(r['value'])} |"
        )
    lines += [
        "",
        "| architecture | data | float32 KiB | float32 metric | int8 KiB | int8 metric | int8 agreement "
        "| int8 ms (p50) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for e in edge:

        def cells(q, e=e):
            d = e[q]
            if "error" in d:
                return f"error: {d['error']}", ""
            name = e.get("metric", "accuracy")
            metric = (
                (f(d["accuracy"]) if name == "accuracy" else f"{name} {f(d['accuracy'])}")
                if d["accuracy"] is not None
                else f"mse {f(d['mse'], 4)}"
                if d["mse"] is not None
                else f"max diff {d['max_abs_diff']:.1e}"
            )
            return f"{d['size_kib']:.1f}", metric

        fs, fm = cells("none")
        i8s, i8m = cells("int8")
        ms = f(e["int8"].get("latency_ms"), 2)
        lines.append(
            f"| {e['arch']} | {e['data']} | {fs} | {fm} | {i8s} | {i8m} | {f(e['int8'].get('agreement'))} | {ms} |"
        )
    # The notes under the tables are written by hand about a measurement: kept across reruns.
    notes = (HERE / "zoo.md").read_text().partition("\nNotes:")[2] if (HERE / "zoo.md").exists() else ""
    if notes:
        lines += ["", "Notes:" + notes.rstrip("\n")]
    (HERE / "zoo.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
