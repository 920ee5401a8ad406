"""int8 files with int8, uint8 and float edges (``--opt io=``), side by side: accuracy, agreement with
Keras and LiteRT p50 latency (1 thread), each verified ``--repeats`` times, alternating.

    python bench/io_interface.py RUN [--repeats 3]

RUN: a classifier run (an RGB image model is where ``io=auto`` picks uint8). Prints a markdown table;
the README's "Using the model in an app" quotes it. Not run by CI.
"""

import argparse
import json
import shutil
import tempfile
from pathlib import Path


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from core import export, verify

    files = {}
    with tempfile.TemporaryDirectory(prefix="kerastack-io-") as tmp:
        for io in ("int8", "uint8", "float"):
            options = {"quantize": "int8", "io": io, "layer_errors": False}
            (path,) = [p for p in export(args.run, "tflite", options) if p.suffix == ".tflite"]
            files[io] = Path(tmp) / f"{io}.tflite"
            shutil.copy(path, files[io])
        rows = {io: [] for io in files}
        for _ in range(args.repeats):
            for io, path in files.items():
                rows[io].append(verify(path, args.run, record=False, latency_runs=2000))
    print("| edges | accuracy | agreement | p50 ms (each repeat) |")
    print("| --- | --- | --- | --- |")
    for io, results in rows.items():
        p50 = " / ".join(f"{r['latency_ms_p50']:.3f}" for r in results)
        first = results[0]
        print(f"| {io} | {first['tflite_accuracy']:.4f} | {first['agreement']:.4f} | {p50} |")
    print(json.dumps({io: [r["latency_ms_p50"] for r in results] for io, results in rows.items()}))


if __name__ == "__main__":
    main()
