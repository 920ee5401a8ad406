"""`make bench`: measurements side by side in one run; writes bench/results.md and results.json.

Not run by CI. Every number is measured here, now, on this machine; ratios compare runs made in
the same invocation, alternating the two sides so that machine noise hits both.

Per model and backend: ``kerastack train`` with its defaults (history.csv, a checkpoint and
best.keras every epoch) against a hand-written ``model.fit`` of the same model, data, batch size and
optimizer (bench/plain_fit.py). Each epoch is timed in parts by bench/timing_plugin.py: the loop
(training and validation passes) and the epoch-end work after it (kerastack's files).

Also per backend, alternating with those two: the fastest loops written by hand for the same model
(bench/handwritten.py: jax.jit + optax, tf.function with and without XLA, torch eager and
torch.compile), reported as kerastack's throughput over the best of them; Keras's levers side by
side (bench/levers.py), where a torch step's time goes against the hand-written step
(bench/step_parts.py) and what an epoch-end checkpoint costs the training thread
(bench/snapshot_cost.py). ``--quick`` skips start-up, probe, levers and the --jit/--precision runs;
``--threads N`` sets OMP_NUM_THREADS for every side (torch's threads spin on a loaded CPU).
"""

import argparse
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parent
KERASTACK = str(Path(sys.executable).with_name("kerastack"))
BACKENDS = ("tensorflow", "jax", "torch")

MODELS = {
    "cnn/digits": dict(arch="cnn", data="digits", hparams={}, data_options={}, batch=64, epochs=8, repeats=5),
    # ~1 M parameters (1,088,043): ResNet, two blocks per stage at 40, 80, 160 filters, on 32×32 images.
    # (MobileNet is not the ~1 M row: XLA:CPU's depthwise convolution makes a JAX epoch take minutes;
    # bench/probe.py measures that layer alone.)
    "resnet/shapes32": dict(
        arch="resnet",
        data="shapes",
        hparams={"width": 40, "depth": 2, "stages": 3},
        data_options={"size": 32, "samples": 1500},
        batch=64,
        epochs=3,
        repeats=3,
    ),
}
VARIANT_TIMEOUT = 300
# bench/handwritten.py's loops, per backend
HANDWRITTEN = {
    "jax": ("jax_jit",),
    "tensorflow": ("tf_function", "tf_function_xla"),
    "torch": ("torch_eager", "torch_compile"),
}
VARIANTS = (("jit_off", ["--jit", "off"]), ("jit_on", ["--jit", "on"]), ("bf16", ["--precision", "mixed_bfloat16"]))


def timed(cmd, env, timeout=None):
    """Run ``cmd``; return the timing plugin's record and the wall-clock launch time."""
    fd, times_file = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    env = dict(os.environ, **env, KERASTACK_BENCH_TIMES=times_file)
    launched = time.time()
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"benchmark command failed: {' '.join(cmd)}\n{proc.stderr[-2000:]}")
        record = json.loads(Path(times_file).read_text())
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"took over {timeout} s") from None
    finally:
        os.unlink(times_file)
    record["to_first_step"] = record["first_step_wall"] - launched
    return record


def hp_text(value):
    return ",".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value)


def kerastack_cmd(model, backend, scratch, extra=()):
    out = tempfile.mkdtemp(prefix="bench-run-", dir=scratch)
    cmd = [
        KERASTACK,
        "--plugin",
        str(HERE / "timing_plugin.py"),
        "train",
        "--arch",
        model["arch"],
        "--data",
        model["data"],
        "--backend",
        backend,
        "--epochs",
        str(model["epochs"]),
        "--batch-size",
        str(model["batch"]),
        "--seed",
        "0",
        "--callback",
        "epoch_times",
        "--out",
        str(Path(out) / "run"),
        "--quiet",
        *extra,
    ]
    cmd += [f"--hp={k}={hp_text(v)}" for k, v in model["hparams"].items()]
    cmd += [f"--data-opt={k}={hp_text(v)}" for k, v in model["data_options"].items()]
    return cmd


def plain_cmd(model):
    return [
        sys.executable,
        str(HERE / "plain_fit.py"),
        model["arch"],
        model["data"],
        str(model["epochs"]),
        str(model["batch"]),
        json.dumps(model["hparams"]),
        json.dumps(model["data_options"]),
    ]


def hand_cmd(variant, model):
    return [sys.executable, str(HERE / "handwritten.py"), variant, *plain_cmd(model)[2:]]


def steady(record, part="total"):
    """Median over the epochs after the first (which compiles)."""
    return statistics.median(e[part] for e in record["epochs"][1:])


def bench_model(name, model, backends, samples, repeats, scratch, variants=VARIANTS):
    rows = []
    for backend in backends:
        env = {"KERAS_BACKEND": backend}
        ours, plain = [], []
        hand = {variant: [] for variant in HANDWRITTEN[backend]}
        hand_errors = {}
        for _ in range(repeats):  # alternate the sides
            ours.append(timed(kerastack_cmd(model, backend, scratch), env))
            plain.append(timed(plain_cmd(model), env))
            for variant in hand:
                if variant in hand_errors:
                    continue
                try:
                    hand[variant].append(timed(hand_cmd(variant, model), env, timeout=VARIANT_TIMEOUT))
                except RuntimeError as exc:
                    hand_errors[variant] = " ".join(str(exc).split())[-300:]
        med = lambda records, f: statistics.median(f(r) for r in records)  # noqa: E731
        row = {
            "model": name,
            "backend": backend,
            "repeats": repeats,
            "epochs": model["epochs"],
            "epoch_s": med(ours, steady),
            "plain_epoch_s": med(plain, steady),
            "loop_s": med(ours, lambda r: steady(r, "loop")),
            "plain_loop_s": med(plain, lambda r: steady(r, "loop")),
            "epoch_end_s": med(ours, lambda r: steady(r, "end")),
            "plain_epoch_end_s": med(plain, lambda r: steady(r, "end")),
            "first_epoch_ratio": med(ours, lambda r: r["epochs"][0]["total"] / steady(r)),
            "to_first_step_s": med(ours, lambda r: r["to_first_step"]),
            "plain_to_first_step_s": med(plain, lambda r: r["to_first_step"]),
            # per-repeat ratios, to show the spread
            "loop_ratios": [steady(o, "loop") / steady(p, "loop") for o, p in zip(ours, plain)],
        }
        row["hand_epoch_s"] = {v: med(r, steady) if r else None for v, r in hand.items()}
        row["hand_errors"] = hand_errors
        timed_hand = {v: t for v, t in row["hand_epoch_s"].items() if t is not None}
        if timed_hand:
            row["hand_best"] = min(timed_hand, key=timed_hand.get)
            # kerastack's throughput as a fraction of the fastest hand-written loop's
            row["vs_hand"] = timed_hand[row["hand_best"]] / row["epoch_s"]
            row["vs_hand_loop"] = timed_hand[row["hand_best"]] / row["loop_s"]
        row["overhead"] = row["epoch_s"] / row["plain_epoch_s"]
        row["loop_overhead"] = row["loop_s"] / row["plain_loop_s"]
        row["samples_per_s"] = samples / row["epoch_s"]
        for label, extra in variants:
            try:
                row[f"{label}_epoch_s"] = steady(
                    timed(kerastack_cmd(model, backend, scratch, extra), env, timeout=VARIANT_TIMEOUT)
                )
            except RuntimeError as exc:
                row[f"{label}_epoch_s"] = None
                row[f"{label}_error"] = " ".join(str(exc).split())[-300:]
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def startup(runs=9):
    """CLI start-up, as installed: with Python's bytecode cache, written by a first run (``pip
    install`` writes it too; where PYTHONDONTWRITEBYTECODE=1 kept it from being written, every start
    compiles the sources again: ~0.45 s here instead of ~0.2 s)."""
    cached = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

    def median_wall(cmd, env, runs=runs):
        subprocess.run(cmd, capture_output=True, env=env, check=True)  # writes the bytecode cache
        walls = []
        for _ in range(runs):
            started = time.perf_counter()
            subprocess.run(cmd, capture_output=True, env=env, check=True)
            walls.append(time.perf_counter() - started)
        return statistics.median(walls)

    heavy = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from core.cli import build_cli; "
            "from core.plugins import PluginHost; build_cli(PluginHost()); "
            "print([m for m in ('keras','tensorflow','jax','torch') if m in sys.modules])",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout.strip()
    out = {
        "help_s": median_wall([KERASTACK, "--help"], cached),
        "plugins_s": median_wall([KERASTACK, "plugins"], cached),
        "python_s": median_wall([sys.executable, "-c", "pass"], cached),
        "heavy_modules_after_help": heavy,
    }
    for backend in BACKENDS:
        out[f"import_keras_{backend}_s"] = median_wall(
            [sys.executable, "-c", "import keras"], dict(cached, KERAS_BACKEND=backend), runs=3
        )
    return out


def script_result(script, backend, *args):
    """The JSON line bench/``script`` prints last, run under ``backend`` (probe.py: per-layer step
    times and knobs; snapshot_cost.py: what an epoch-end checkpoint costs the training thread;
    levers.py: Keras's levers on cnn/digits; step_parts.py: a torch step taken apart)."""
    proc = subprocess.run(
        [sys.executable, str(HERE / script), *map(str, args)],
        env=dict(os.environ, KERAS_BACKEND=backend),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def fmt(value, spec=".2f"):
    return "—" if value is None else format(value, spec)


def write(results):
    """results.json, and results.md (printed too): a section per measurement that ran."""
    (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    rows = results["training"]
    lines = header(results) + training_section(rows) + handwritten_section(rows) + variants_section(rows)
    lines += probe_section(results["probe"]) + levers_section(results.get("levers") or [])
    lines += step_parts_section(results.get("step_parts")) + snapshot_section(results.get("snapshot_cost") or [])
    if results["startup"] is not None:
        lines += startup_section(results["startup"])
    (HERE / "results.md").write_text("\n".join(lines + [""]))
    print("\n".join(lines))


def table(head, rows):
    """A markdown table's lines: the ``head`` cells, the separator, a line per row of cells."""
    return ["| " + " | ".join(head) + " |", "|---" * len(head) + "|", *("| " + " | ".join(r) + " |" for r in rows)]


def header(results):
    loaded = " — a loaded machine: other jobs shared the cores, so times are noisy"
    return [
        "# kerastack benchmark",
        "",
        f"Measured {results['when']} on {results['machine']} (`make bench`, {results['command']}).",
        "",
        f"Load average (1 min) {results['load_before']:.1f} before, {results['load_after']:.1f} after"
        + (loaded if results["load_before"] > 1.5 else "")
        + (f"; OMP_NUM_THREADS={results['threads']}" if results.get("threads") else "")
        + ".",
    ]


def training_section(rows):
    head = (
        "model", "backend", "epoch s", "samples/s", "plain epoch s", "overhead (epoch)", "overhead (loop)",
        "loop ratio per repeat", "epoch end ms", "1st epoch / steady", "to 1st step s (plain)",
    )  # fmt: skip
    cells = [
        (
            r["model"],
            r["backend"],
            f"{r['epoch_s']:.3f}",
            f"{r['samples_per_s']:.0f}",
            f"{r['plain_epoch_s']:.3f}",
            f"{r['overhead']:.3f}×",
            f"{r['loop_overhead']:.3f}×",
            ", ".join(f"{x:.2f}" for x in r["loop_ratios"]),
            f"{1000 * r['epoch_end_s']:.0f}",
            f"{r['first_epoch_ratio']:.1f}",
            f"{r['to_first_step_s']:.1f} ({r['plain_to_first_step_s']:.1f})",
        )
        for r in rows
    ]
    return [
        "",
        "## Training",
        "",
        "Steady epoch = median of epochs 2..N, then the median over repeats. *loop* is the training"
        " and validation passes; *epoch end* is the work after them (kerastack: history.csv,"
        " checkpoint.keras and best.keras each epoch; plain fit: nothing). Overhead = kerastack /"
        " plain `model.fit` of the same model, data, batch size and optimizer.",
        "",
        *table(head, cells),
    ]


def handwritten_section(rows):
    loops = ("jax_jit", "tf_function", "tf_function_xla", "torch_eager", "torch_compile")
    head = (
        "model", "backend", "kerastack", "jax.jit + optax", "tf.function", "tf.function + XLA", "torch eager",
        "torch.compile", "vs best", "loop vs best",
    )  # fmt: skip
    cells = [
        (
            r["model"],
            r["backend"],
            f"{r['epoch_s']:.3f}",
            *(fmt(r.get("hand_epoch_s", {}).get(v), ".3f") for v in loops),
            f"{fmt(r.get('vs_hand'))}×",
            f"{fmt(r.get('vs_hand_loop'))}×",
        )
        for r in rows
    ]
    return [
        "",
        "### Against the fastest hand-written loop (bench/handwritten.py)",
        "",
        "Steady epoch, s (training and validation passes; the hand-written loops have no epoch-end"
        " files). *vs best* = kerastack's throughput with its default settings as a fraction of the"
        " fastest hand-written loop's (goal ≥ 0.9); *loop vs best*: kerastack's training and"
        " validation passes alone.",
        "",
        *table(head, cells),
        *(f"- {r['model']} {r['backend']} {v}: {e}" for r in rows for v, e in r.get("hand_errors", {}).items()),
    ]


def variants_section(rows):
    """``--jit`` and ``--precision`` runs (skipped by ``--quick``), and the errors of any run."""
    errors = [(r["model"], r["backend"], k, v) for r in rows for k, v in r.items() if k.endswith("_error")]
    errors = [f"- {m} {b} {k[:-6]}: {v}" for m, b, k, v in errors]
    if not any(f"{label}_epoch_s" in r for r in rows for label, _ in VARIANTS):
        return ["", "(`--jit` and `--precision` runs skipped: `--quick`.)", *errors]
    head = (
        "model", "backend", "default (`--jit auto`, float32)", "`--jit off`", "`--jit on`",
        "`--precision mixed_bfloat16`",
    )  # fmt: skip
    cells = [
        (
            r["model"],
            r["backend"],
            f"{r['epoch_s']:.3f}",
            *(fmt(r.get(f"{label}_epoch_s"), ".3f") for label in ("jit_off", "jit_on", "bf16")),
        )
        for r in rows
    ]
    heading = "### `--jit` and `--precision` (kerastack steady epoch, s)"
    return ["", heading, "", *table(head, cells), *errors]


def probe_section(probes):
    if not probes:
        return []
    names, knobs = list(probes[0]["layers"]), list(probes[0]["knobs"])
    steps = [
        (p["backend"], *(f"{p['layers'][n]['train_step']:.0f} ({p['layers'][n]['forward']:.0f})" for n in names))
        for p in probes
    ]
    return [
        "",
        "## Why the backends differ on CPU (bench/probe.py)",
        "",
        "One training step (forward + backward + SGD) of a single layer on a 64×16×16×144 batch, ms"
        " (forward pass alone in brackets):",
        "",
        *table(("backend", *names), steps),
        "",
        "Default CNN on digits, plain `model.fit`, steady epoch in ms (— : refused by the backend):",
        "",
        *table(("backend", *knobs), [(p["backend"], *(fmt(p["knobs"][k], ".0f") for k in knobs)) for p in probes]),
    ]


def levers_section(lever_rows):
    if not lever_rows:
        return []
    names = list(dict.fromkeys(n for r in lever_rows for n in r["epoch_ms"]))
    return [
        "",
        "## Keras's levers (bench/levers.py)",
        "",
        "cnn/digits, batch 64, plain `model.fit` of 3 epochs, the settings taking turns in one process;"
        " median steady epoch ms (— : refused by the backend or not applicable). *batch_hook*: a callback"
        " with an `on_train_batch_end` hook (Keras then dispatches batch ends synchronously); *begin_hook*:"
        " the same check at batch begin (kerastack's Ctrl-C check now); *speN*: `steps_per_execution` N;"
        " *tf_data*: the arrays as repeated tf.data pipelines with `steps_per_epoch` (kerastack's"
        " TensorFlow input now).",
        "",
        *table(
            ("backend", *names),
            [(r["backend"], *(fmt(r["epoch_ms"].get(n), ".0f") for n in names)) for r in lever_rows],
        ),
    ]


def step_parts_section(parts):
    if not parts:
        return []
    names = list(parts["step_ms"])
    return [
        "",
        "## Where a torch step's time goes (bench/step_parts.py)",
        "",
        f"cnn/digits, one batch of 64, {parts['threads']} threads, the variants taking turns in one process;"
        " median ms per step. *hand*: forward, NLL, backward, fused `torch.optim.Adam` (the hand-written"
        " loop's step); *hand_keras_adam*: with Keras's Adam instead; *hand_keras_loss*: with Keras's"
        " compiled loss instead; *keras_train_step*: Keras's `train_step` (its loss, loss tracker,"
        " accuracy metric and Adam).",
        "",
        *table(names, [[fmt(parts["step_ms"][n]) for n in names]]),
    ]


def snapshot_section(costs):
    if not costs:
        return []
    cols = ("save_file", "save_memory", "config", "walk", "copy_convert", "copy_numpy", "copy_device_get", "background")
    cells = [
        (c["backend"], name, f"{m['mb']:.1f}", *(fmt(m.get(k), ".1f") for k in cols), str(m["same_as_model_save"]))
        for c in costs
        for name, m in c["models"].items()
    ]
    return [
        "",
        "## What an epoch-end checkpoint costs the training thread (bench/snapshot_cost.py)",
        "",
        "Median ms per call, after one epoch. kerastack now does *copy_numpy* (a snapshot's host copy, variable"
        ".numpy()) on the training thread each epoch (*walk*, Keras's save walk, once) and *background* in its"
        " writer thread; before, *save_file* ran on the training thread. *same*: the file built from the copy"
        " loads with model.save's weights and optimizer state.",
        "",
        *table(("backend", "model", "MB", *cols, "same"), cells),
    ]


def startup_section(s):
    return [
        "",
        "## Start-up (median of 9 runs; `import keras`: of 3)",
        "",
        f"- `kerastack --help`: {s['help_s']:.2f} s (bare `python -c pass`: {s['python_s']:.2f} s); "
        f"`kerastack plugins`: {s['plugins_s']:.2f} s (with Python's bytecode cache, as installed)",
        f"- heavy modules imported by building the CLI: {s['heavy_modules_after_help']}",
        "- `import keras`: " + ", ".join(f"{b} {s[f'import_keras_{b}_s']:.1f} s" for b in BACKENDS),
    ]


def train_size(model):
    sys.path.insert(0, str(ROOT))
    dataset = importlib.import_module(f"plugins.datasets.{model['data']}").load(**model["data_options"])
    return len(dataset.train[0])


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--repeats", type=int, help="override each model's number of repeats")
    parser.add_argument("--quick", action="store_true", help="skip start-up, probe and the --jit/--precision runs")
    parser.add_argument("--threads", type=int, help="OMP_NUM_THREADS for every side (torch spins on a loaded CPU)")
    args = parser.parse_args()
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    for given, valid in ((args.models, MODELS), (args.backends, BACKENDS)):
        unknown = [name for name in given.split(",") if name not in valid]
        if unknown:
            parser.error(f"unknown {unknown[0]!r}; valid: {', '.join(valid)}")
    with tempfile.TemporaryDirectory(prefix="kerastack-bench-") as scratch:  # the runs' directories
        run(args, scratch)


def run(args, scratch):
    results = {
        "when": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "command": " ".join(["bench/run.py", *sys.argv[1:]]),
        "training": [],
        "load_before": os.getloadavg()[0],
        "threads": os.environ.get("OMP_NUM_THREADS"),
        "startup": None if args.quick else startup(),
    }
    print(json.dumps(results["startup"]), flush=True)
    results["probe"] = [] if args.quick else [script_result("probe.py", b) for b in args.backends.split(",")]
    print(json.dumps(results["probe"]), flush=True)
    results["levers"] = [] if args.quick else [script_result("levers.py", b, 7) for b in args.backends.split(",")]
    print(json.dumps(results["levers"]), flush=True)
    # where torch's step time goes against the hand-written step (bench/step_parts.py)
    results["step_parts"] = script_result("step_parts.py", "torch", 7) if "torch" in args.backends.split(",") else None
    print(json.dumps(results["step_parts"]), flush=True)
    results["snapshot_cost"] = [script_result("snapshot_cost.py", b) for b in args.backends.split(",")]
    print(json.dumps(results["snapshot_cost"]), flush=True)
    for name in args.models.split(","):
        model = MODELS[name]
        results["training"] += bench_model(
            name,
            model,
            args.backends.split(","),
            train_size(model),
            args.repeats or model["repeats"],
            scratch,
            variants=() if args.quick else VARIANTS,
        )
    results["load_after"] = os.getloadavg()[0]
    write(results)


if __name__ == "__main__":
    main()
