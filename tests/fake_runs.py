"""Run directories written by hand, shaped like training's: for tests of what reads runs, no training."""

import csv
import json
from pathlib import Path

import numpy as np

VERSIONS = {"python": "3.11.7", "kerastack": "0.1.0", "keras": "3.15.1", "numpy": "2.4.6"}


def make_run(
    root,
    name="cnn-digits",
    *,
    arch="cnn",
    data="digits",
    backend="tensorflow",
    epochs=3,
    task="classification",
    created="2026-11-21T10:00:00+0000",
    hparams=None,
    status="complete",
    predictions=True,
    classes=3,
    seed=0,
):
    """Write ``root/name`` with run.json, history.csv, metrics.json, a placeholder model.keras and,
    for classification, predictions.npz (``y_true``, ``y_pred``, ``split``). Returns its path."""
    run = Path(root) / name
    run.mkdir(parents=True)
    names = [f"class_{i}" for i in range(classes)] if task == "classification" else None
    record = {
        "status": status,
        "created": created,
        "architecture": {
            "name": arch,
            "plugin": f"plugins.architectures.{arch}",
            "origin": "built-in",
            "options": dict(hparams or {}),
        },
        "dataset": {"name": data, "plugin": f"plugins.datasets.{data}", "origin": "built-in", "options": {}},
        "spec": {"input_shape": [4], "num_classes": classes if names else None, "task": task, "class_names": names},
        "training": {"backend": backend, "epochs": epochs, "batch_size": 32, "seed": seed, "callbacks": []},
        "plugins": [],
        "versions": VERSIONS,
    }
    (run / "run.json").write_text(json.dumps(record, indent=2))
    metric = "accuracy" if task == "classification" else "mae"
    rows = []
    for e in range(1, epochs + 1):
        rows.append(
            {
                "epoch": e,
                metric: 0.5 + 0.1 * e if metric == "accuracy" else 1.0 / e,
                "loss": 1.0 / e,
                f"val_{metric}": 0.45 + 0.1 * e if metric == "accuracy" else 1.2 / e,
                "val_loss": 1.1 / e,
            }
        )
    with open(run / "history.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    if status == "complete":
        metrics = {"backend": backend, "epochs": epochs, "seconds": 1.5, "trainable_params": 1234, "total_params": 1234}
        metrics.update({k: v for k, v in rows[-1].items() if k != "epoch"})
        metrics.update({f"test_{metric}": rows[-1][f"val_{metric}"] - 0.01, "test_loss": rows[-1]["val_loss"]})
        (run / "metrics.json").write_text(json.dumps(metrics, indent=2))
        (run / "model.keras").write_bytes(b"placeholder")
        if predictions and task == "classification":
            rng = np.random.default_rng(seed)
            y_true = rng.integers(0, classes, 60)
            y_pred = np.where(rng.random(60) < 0.8, y_true, rng.integers(0, classes, 60))
            np.savez(run / "predictions.npz", y_true=y_true, y_pred=y_pred, split=np.array("test"))
    return run


def add_tflite_export(run, verified=True):
    """``run/export/tflite/`` as the tflite exporter and ``kerastack verify`` leave it (fake bytes)."""
    out = run / "export" / "tflite"
    out.mkdir(parents=True)
    files = {}
    for variant, quantize, size in (("float32", "none", 4096), ("int8", "int8", 1500)):
        (out / f"model_{variant}.tflite").write_bytes(b"\0" * size)
        files[f"model_{variant}.tflite"] = {
            "quantize": quantize,
            "io": "float",
            "batch": None,
            "size_bytes": size,
            "ops": ["FULLY_CONNECTED", "SOFTMAX"],
        }
    (out / "model.json").write_text(json.dumps({"format": "kerastack-tflite/1", "files": files}))
    (out / "labels.txt").write_text("class_0\nclass_1\nclass_2\n")
    if verified:
        result = {
            "file": str(out / "model_int8.tflite"),
            "split": "test",
            "samples": 60,
            "size_bytes": 1500,
            "max_abs_diff": 0.012,
            "latency_ms_p50": 0.0213,
            "latency_ms_p90": 0.03,
            "threads": 1,
            "tflite_accuracy": 0.8167,
            "keras_accuracy": 0.8333,
            "agreement": 0.9833,
        }
        (out / "verify.json").write_text(json.dumps([result]))
    return out
