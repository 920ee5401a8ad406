"""`make bench-scale`: samples/s of 1 process against 2 processes (one thread each) on the same
global batch, per backend, and the scaling efficiency. Writes bench/scale.md and bench/scale.json.
Not run by CI.

    python bench/scale.py [--backends tensorflow,jax,torch] [--epochs 4] [--batch-size 256]

The model is cnn on digits with 64 filters: compute, not the all-reduce of its weights, dominates
a step. The first epoch (compiling) is left out; the rate is from the fastest of the others (rank 0's
wall time): on a machine that other jobs share, the fastest epoch is the one least disturbed.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
REPO = HERE.parent
KERASTACK = str(Path(sys.executable).with_name("kerastack"))
PLUGIN = """
import json, os, time
from core import hookimpl

@hookimpl
def register_callbacks(register):
    register("scale_times", make, summary="epoch wall times of rank 0 (bench/scale.py)")

def make():
    import keras

    class Times(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            if os.environ.get("RANK", "0") != "0":
                return
            path = os.environ["SCALE_TIMES"]
            times = json.load(open(path)) if os.path.exists(path) else []
            json.dump(times + [time.perf_counter() - self.start], open(path, "w"))

    return Times()
"""
NOTES = """Why short of the 1.6x goal. On an idle machine (2026-11-30 01:44 UTC, load 0.6 before the
run) 2 processes were still no faster than 1: TensorFlow 0.80x, JAX 0.67x, torch 0.97x. So the load
is not the cause; earlier runs at load 4 to 9 gave 0.34x to 1.23x, noise around the same picture.
This model's steps are short (batch 256 of 8x8 images: about 5 steps and 0.3 to 0.4 s per epoch at
one thread), and each step ends in the engine's collectives, on loopback: torch all-reduces each
parameter's gradient separately as it is accumulated (no buckets, unlike DDP), JAX goes through
gloo, TensorFlow's MultiWorkerMirroredStrategy through gRPC with its own batch re-splitting. The
cost of those per-step collectives, not the arithmetic, is what the 2 processes add; it was not
profiled further. Scaling needs steps where compute dominates: a larger model or batch
(`python bench/scale.py --batch-size 1024`), or one GPU per process (none was lent to this work).
"""
DIGITS_TRAIN = 1437  # the digits dataset's train split (80 % of 1,797)


def measure(backend, processes, epochs, batch, tmp):
    plugin = Path(tmp) / "scale_plugin.py"
    plugin.write_text(PLUGIN)
    times = Path(tmp) / f"{backend}-{processes}.json"
    env = dict(
        os.environ,
        OMP_NUM_THREADS="1",
        TF_NUM_INTRAOP_THREADS="1",
        TF_NUM_INTEROP_THREADS="1",
        XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
        SCALE_TIMES=str(times),
        PYTHONPATH=str(REPO),
    )
    cmd = [KERASTACK, "--plugin", str(plugin), "train", "--arch", "cnn", "--data", "digits", "--hp", "filters=64"]
    cmd += ["--hp", "dropout=0", "--backend", backend, "--epochs", str(epochs), "--batch-size", str(batch)]
    cmd += ["--distribute", "data", "--processes", str(processes), "--seed", "0", "--quiet", "--callback"]
    cmd += ["scale_times", "--out", str(Path(tmp) / f"run-{backend}-{processes}")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode:
        return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    epoch_times = json.loads(times.read_text())
    samples = (DIGITS_TRAIN // batch) * batch
    rest = epoch_times[1:] or epoch_times
    return {
        "epoch_s": epoch_times,
        "samples_per_s": samples / min(rest),
        "median_samples_per_s": samples / statistics.median(rest),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--report-only", action="store_true", help="write scale.md again from scale.json")
    args = parser.parse_args()
    if args.report_only:
        write_report(json.loads((HERE / "scale.json").read_text()))
        return
    load_before = os.getloadavg()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends.split(","):
            results[backend] = {n: measure(backend, n, args.epochs, args.batch_size, tmp) for n in (1, 2)}
            print(backend, json.dumps(results[backend]), flush=True)
    load_after = os.getloadavg()
    record = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpus": os.cpu_count(),
        "load_before": load_before,
        "load_after": load_after,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "results": results,
    }
    (HERE / "scale.json").write_text(json.dumps(record, indent=2))
    write_report(record)


def write_report(record):
    results, load_before, load_after = record["results"], record["load_before"], record["load_after"]
    epochs, batch = record["epochs"], record["batch_size"]
    lines = [
        "# Scaling out: 1 process against 2 (bench/scale.py)",
        "",
        f"cnn (64 filters, no dropout) on digits, global batch {batch}, {epochs} epochs, the first left "
        f"out, the fastest of the others (the median in scale.json); one thread per process; {record['cpus']} CPUs; measured {record['when']}. Load average (1 min) "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after"
        + (
            ": other jobs shared these cores, so the ratios are what this machine gave then, not what an idle one gives."
            if load_before[0] >= 1
            else " (an idle machine)."
        ),
        "",
        "| backend | 1 process (samples/s) | 2 processes (samples/s) | speed-up | efficiency |",
        "| --- | --- | --- | --- | --- |",
    ]
    for backend, by_n in results.items():
        one, two = by_n.get(1) or by_n["1"], by_n.get(2) or by_n["2"]
        if "error" in one or "error" in two:
            lines.append(f"| {backend} | {one.get('error', '')} | {two.get('error', '')} | | |")
            continue
        speed = two["samples_per_s"] / one["samples_per_s"]
        lines.append(
            f"| {backend} | {one['samples_per_s']:,.0f} | {two['samples_per_s']:,.0f} | {speed:.2f}x | {speed / 2:.0%} |"
        )
    lines += ["", NOTES.format(load=load_before[0], cpus=record["cpus"])]
    (HERE / "scale.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
