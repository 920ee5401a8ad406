"""`make bench-scale`: the training pass of 1 process against 2 (one thread each, the same global
batch), per backend, and where a step's time goes. Writes bench/scale.json and bench/scale.md.
Not run by CI.

    python bench/scale.py [--backends tensorflow,jax,torch] [--cases resnet,digits] [--epochs N]
                          [--torch-buckets 0,25]   # MB per torch gradient bucket (0: one per parameter)
    python bench/scale.py --report-only            # scale.md again from scale.json

Two models:

- ``resnet``: the compute-bound case. ResNet (width 32, depth 2, 3 stages, ~1 M parameters) on
  32×32 ``shapes``, 1,024 training samples, no validation or test split, global batch 64.
- ``digits``: the small-model case. cnn with 64 filters on digits, global batch 256 (5 steps an
  epoch): fixed costs and the collectives dominate.

What is timed is the training pass alone: from the first batch's start to the last batch's end of
each epoch, on rank 0 (a callback; every step's loss is read so that asynchronous dispatch cannot
hide a step's work). Epoch-end work (validation, checkpoints, callbacks) is reported apart. The
first epoch (compiling) is left out; rates are medians over the others.

The step is split into parts by measurement, not by a profiler's attribution:

- ``compute``: the median step of **one** process at **half** the global batch (what each of 2
  processes computes; the resnet case runs it);
- ``collective``: a 2-process step minus that compute: the all-reduce of the gradients (and the
  synchronized BatchNorm moments), and the waiting on the slower peer;
- ``data``: the time between one step's end and the next one's start (the loader and Keras's loop).

``--pinned`` adds runs with ``KERASTACK_PIN=1``: each of 2 workers pinned to its own CPU by the
launcher, and the 1-process run to one CPU. User and system CPU seconds of the whole run (every
process) come from ``getrusage``. The bytes all-reduced per step are 4 × the trainable parameters (float32 gradients), set against the
bandwidth of loopback measured here (one TCP stream, 4 MB messages).

The machine may be shared: load averages are recorded, and the ratios are only as good as the
quiet they were measured in. Rerun it on an idle machine for numbers to quote.
"""

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
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
    register("scale_times", make, summary="step and epoch times of rank 0 (bench/scale.py)")

def make():
    import keras

    class Times(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch_start, self.last_end, self.steps, self.gaps = time.perf_counter(), None, [], []

        def on_train_batch_begin(self, batch, logs=None):
            self.begin = time.perf_counter()
            if self.last_end is not None:
                self.gaps.append(self.begin - self.last_end)
            else:
                self.first = self.begin

        def on_train_batch_end(self, batch, logs=None):
            if logs and "loss" in logs:
                float(logs["loss"])  # the step's work done, not only dispatched
            self.last_end = time.perf_counter()
            self.steps.append(self.last_end - self.begin)

        def on_epoch_end(self, epoch, logs=None):
            if os.environ.get("RANK", "0") != "0":
                return
            end = time.perf_counter()
            path = os.environ["SCALE_TIMES"]
            times = json.load(open(path)) if os.path.exists(path) else []
            times.append({"train_s": self.last_end - self.first, "epoch_s": end - self.epoch_start,
                          "steps_s": self.steps, "gaps_s": self.gaps})
            json.dump(times, open(path, "w"))

    return Times()
"""
CASES = {
    "resnet": {
        "args": ["--arch", "resnet", "--data", "shapes", "--hp", "width=32", "--hp", "depth=2", "--hp", "stages=3"]
        + ["--hp", "dropout=0", "--data-opt", "size=32", "--data-opt", "samples=1024", "--data-opt", "validation=0"]
        + ["--data-opt", "test=0"],
        "batch": 64,
        "samples": 1024,
        "epochs": 4,
        "half": True,
        "what": "ResNet (width 32, depth 2, 3 stages) on 32x32 shapes, 1,024 samples, global batch 64",
    },
    "digits": {
        "args": ["--arch", "cnn", "--data", "digits", "--hp", "filters=64", "--hp", "dropout=0"],
        "batch": 256,
        "samples": 1437,  # the digits dataset's train split (80 % of 1,797)
        "epochs": 6,
        "half": False,
        "what": "cnn (64 filters) on digits, global batch 256",
    },
}
ONE_THREAD = {
    "OMP_NUM_THREADS": "1",
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false",
}


SYNCED = "2, BatchNorm synchronized"


def measure(case, backend, processes, batch, tmp, epochs, extra_env=None, extra_args=()):
    """One training run (``extra_args`` added to its command line); the timings of rank 0 and the
    CPU time of every process."""
    spec = CASES[case]
    plugin = Path(tmp) / "scale_plugin.py"
    plugin.write_text(PLUGIN)
    tag = f"{case}-{backend}-{processes}-{batch}-{'-'.join(f'{k}{v}' for k, v in (extra_env or {}).items())}"
    tag += "".join(a.strip("-") for a in extra_args)
    times = Path(tmp) / f"{tag}.json"
    env = dict(os.environ, **ONE_THREAD, SCALE_TIMES=str(times), PYTHONPATH=str(REPO), **(extra_env or {}))
    out = Path(tmp) / f"run-{tag}"
    cmd = [KERASTACK, "--plugin", str(plugin), "train", *spec["args"], "--backend", backend]
    cmd += ["--epochs", str(epochs), "--batch-size", str(batch), "--distribute", "data"]
    cmd += ["--processes", str(processes), "--seed", "0", "--quiet", "--callback", "scale_times", "--out", str(out)]
    cmd += list(extra_args)
    pinned = processes == 1 and env.get("KERASTACK_PIN") == "1" and hasattr(os, "sched_setaffinity")
    # KERASTACK_PIN=1: one process on one CPU, as the launcher then pins each of 2 workers to its own.
    first = min(os.sched_getaffinity(0)) if pinned else None
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(
        cmd,
        env=env,
        capture_output=True,
        text=True,
        preexec_fn=(lambda: os.sched_setaffinity(0, {first})) if pinned else None,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    epochs_seen = json.loads(times.read_text())
    rest = epochs_seen[1:] or epochs_seen
    steps = [s for e in rest for s in e["steps_s"]]
    gaps = [g for e in rest for g in e["gaps_s"]]
    samples = (spec["samples"] // batch) * batch
    metrics = json.loads((out / "metrics.json").read_text())
    return {
        "train_s": [e["train_s"] for e in epochs_seen],
        "epoch_s": [e["epoch_s"] for e in epochs_seen],
        "samples_per_s": samples / statistics.median(e["train_s"] for e in rest),
        "step_ms": 1000 * statistics.median(steps),
        "gap_ms": 1000 * statistics.median(gaps) if gaps else 0.0,
        "epoch_end_ms": 1000 * statistics.median(e["epoch_s"] - e["train_s"] for e in rest),
        "wall_s": wall,
        "user_s": after.ru_utime - before.ru_utime,
        "sys_s": after.ru_stime - before.ru_stime,
        "trainable_params": metrics.get("trainable_params"),
    }


def loopback_bandwidth(total=256 << 20, chunk=4 << 20):
    """Bytes per second through one TCP stream on 127.0.0.1 (4 MB messages)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    received = []

    def sink():
        conn, _ = server.accept()
        n = 0
        while n < total:
            data = conn.recv(1 << 20)
            if not data:
                break
            n += len(data)
        received.append(n)
        conn.sendall(b"k")
        conn.close()

    thread = threading.Thread(target=sink)
    thread.start()
    client = socket.create_connection(server.getsockname())
    payload = b"\0" * chunk
    start = time.perf_counter()
    for _ in range(total // chunk):
        client.sendall(payload)
    client.recv(1)
    seconds = time.perf_counter() - start
    client.close()
    thread.join()
    server.close()
    return total / seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    parser.add_argument("--cases", default="resnet,digits")
    parser.add_argument("--epochs", type=int, help="epochs per run (default: the case's: resnet 4, digits 6)")
    parser.add_argument(
        "--torch-buckets",
        default="",
        help="also time torch's 2 processes at these gradient bucket sizes, MB (0: one all-reduce per parameter)",
    )
    parser.add_argument(
        "--synced-bn",
        action="store_true",
        help="also time 2 processes with BatchNorm synchronized (--sync-batchnorm; the rows '2' are not)",
    )
    parser.add_argument(
        "--pinned", action="store_true", help="also time 1 and 2 processes pinned to their CPUs (KERASTACK_PIN=1)"
    )
    parser.add_argument("--append", action="store_true", help="keep scale.json's other cases and backends")
    parser.add_argument("--report-only", action="store_true", help="write scale.md again from scale.json")
    args = parser.parse_args()
    if args.report_only:
        write_report(json.loads((HERE / "scale.json").read_text()))
        return
    load_before = os.getloadavg()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.cases.split(","):
            spec, results[case] = CASES[case], {}
            epochs = args.epochs or spec["epochs"]
            for backend in args.backends.split(","):
                rows = {
                    "1": measure(case, backend, 1, spec["batch"], tmp, epochs),
                    "2": measure(case, backend, 2, spec["batch"], tmp, epochs),
                }
                if spec["half"]:
                    rows["1 at half the batch"] = measure(case, backend, 1, spec["batch"] // 2, tmp, epochs)
                if args.synced_bn:
                    rows[SYNCED] = measure(
                        case, backend, 2, spec["batch"], tmp, epochs, extra_args=["--sync-batchnorm"]
                    )
                if args.pinned:
                    for n in (1, 2):
                        rows[f"{n}, pinned"] = measure(
                            case, backend, n, spec["batch"], tmp, epochs, {"KERASTACK_PIN": "1"}
                        )
                if backend == "torch":
                    for mb in filter(None, args.torch_buckets.split(",")):
                        env = {"KERASTACK_TORCH_BUCKET_MB": mb}
                        rows[f"2, buckets of {mb} MB"] = measure(case, backend, 2, spec["batch"], tmp, epochs, env)
                results[case][backend] = rows
                print(case, backend, json.dumps(rows), flush=True)
    record = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpus": os.cpu_count(),
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "loopback_bytes_per_s": loopback_bandwidth(),
        "results": results,
    }
    old = json.loads((HERE / "scale.json").read_text()) if (HERE / "scale.json").exists() else {}
    if args.append and "loopback_bytes_per_s" in old:  # the same layout: merge, the new rows winning
        for case, by_backend in old["results"].items():
            record["results"][case] = {**by_backend, **record["results"].get(case, {})}
        record["when"] = f"{old['when']}; {record['when']}"
    (HERE / "scale.json").write_text(json.dumps(record, indent=2))
    write_report(record)


def write_report(record):
    load_before, load_after, bandwidth = record["load_before"], record["load_after"], record["loopback_bytes_per_s"]
    lines = [
        "# Scaling out: 1 process against 2 (bench/scale.py)",
        "",
        f"One thread per process; {record['cpus']} CPUs; measured {record['when']}. Load average (1 min) "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after"
        + (
            ": other jobs shared these cores, so the ratios are what this machine gave then, not what an "
            "idle one gives (rerun `make bench-scale` on a quiet machine)."
            if load_before[0] >= 1.5  # after: the bench's own processes are still in the average
            else ": nothing else ran beside the bench."
        ),
        f"Loopback (one TCP stream, 4 MB messages): {bandwidth / 1e9:.2f} GB/s.",
        "",
        "Samples/s of the training pass (rank 0's clock, first batch's start to last batch's end, median "
        "over the epochs after the first); the step split: `compute` is 1 process's step at half the "
        "global batch, `collective` a 2-process step minus that, `data` the gap between steps.",
    ]
    for case, by_backend in record["results"].items():
        lines += ["", f"## {case}: {CASES[case]['what']}", ""]
        lines += [
            "| backend | run | samples/s | speed-up | step (ms) | data gap (ms) | epoch end (ms) | user CPU (s) "
            "| sys CPU (s) |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for backend, rows in by_backend.items():
            one = rows.get("1", {})
            for name, row in rows.items():
                if "error" in row:
                    lines.append(f"| {backend} | {name} | {row['error']} | | | | | | |")
                    continue
                base = rows.get("1, pinned", {}) if "pinned" in name else one
                speed = (
                    ""
                    if name.startswith("1") or not base or "error" in base
                    else f"{row['samples_per_s'] / base['samples_per_s']:.2f}x"
                )
                lines.append(
                    f"| {backend} | {name} | {row['samples_per_s']:,.0f} | {speed} | {row['step_ms']:.1f} "
                    f"| {row['gap_ms']:.1f} | {row['epoch_end_ms']:.0f} | {row['user_s']:.1f} | {row['sys_s']:.1f} |"
                )
        split = [
            (backend, rows)
            for backend, rows in by_backend.items()
            if "1 at half the batch" in rows and not any("error" in r for r in rows.values())
        ]
        if split:
            lines += ["", "Where a 2-process step goes (ms):", ""]
            lines += [
                "| backend | step | compute | collective + waiting | data gap | bytes all-reduced | at loopback's rate |",
                "| --- | --- | --- | --- | --- | --- | --- |",
            ]
            for backend, rows in split:
                two, half = rows["2"], rows["1 at half the batch"]
                nbytes = 4 * (two["trainable_params"] or 0)
                lines.append(
                    f"| {backend} | {two['step_ms']:.1f} | {half['step_ms']:.1f} | {two['step_ms'] - half['step_ms']:.1f} "
                    f"| {two['gap_ms']:.1f} | {nbytes / 1e6:.1f} MB | {1000 * nbytes / bandwidth:.1f} ms |"
                )
    notes = HERE / "scale_notes.md"
    if notes.exists():
        lines += ["", notes.read_text().strip()]
    (HERE / "scale.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
