"""`make bench`: measurements side by side in one run; writes bench/results.md and results.json.

Not run by CI. Every number is measured here, now, on this machine; ratios compare runs made in
the same invocation, alternating the two sides so that machine noise hits both.
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
ROOT = HERE.parent
KERASTACK = str(Path(sys.executable).with_name("kerastack"))
BACKENDS = ("tensorflow", "jax", "torch")

MODELS = {
    "cnn/digits": dict(arch="cnn", data="digits", hparams={}, data_options={}, batch=64),
    "mobilenet/shapes32": dict(arch="mobilenet", data="shapes", hparams={"alpha": 1.0},
                               data_options={"size": 32, "samples": 1500}, batch=64),
}


def epoch_times(cmd, env):
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        times_file = f.name
    env = dict(os.environ, **env, KERASTACK_BENCH_TIMES=times_file)
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"benchmark command failed: {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    times = json.loads(Path(times_file).read_text())
    os.unlink(times_file)
    return times, wall


def kerastack_cmd(model, backend, epochs, extra=()):
    out = tempfile.mkdtemp(prefix="bench-run-")
    cmd = [KERASTACK, "--plugin", str(HERE / "timing_plugin.py"), "train", "--arch", model["arch"],
           "--data", model["data"], "--backend", backend, "--epochs", str(epochs), "--batch-size",
           str(model["batch"]), "--seed", "0", "--callback", "epoch_times", "--checkpoint-every", "0",
           "--out", str(Path(out) / "run"), "--quiet", *extra]
    cmd += [f"--hp={k}={v}" for k, v in model["hparams"].items()]
    cmd += [f"--data-opt={k}={v}" for k, v in model["data_options"].items()]
    return cmd


def plain_cmd(model, epochs):
    return [sys.executable, str(HERE / "plain_fit.py"), model["arch"], model["data"], str(epochs),
            str(model["batch"]), json.dumps(model["hparams"]), json.dumps(model["data_options"])]


def steady(times):
    return statistics.median(times[1:])


def bench_model(name, model, backends, epochs, repeats, samples):
    rows = []
    for backend in backends:
        env = {"KERAS_BACKEND": backend}
        ours, plain = [], []
        for _ in range(repeats):  # alternate the two sides
            ours.append(epoch_times(kerastack_cmd(model, backend, epochs), env)[0])
            plain.append(epoch_times(plain_cmd(model, epochs), env)[0])
        ours_steady = statistics.median(steady(t) for t in ours)
        plain_steady = statistics.median(steady(t) for t in plain)
        row = {"model": name, "backend": backend, "epoch_s": ours_steady, "plain_epoch_s": plain_steady,
               "overhead": ours_steady / plain_steady,
               "samples_per_s": samples / ours_steady,
               "first_epoch_ratio": statistics.median(t[0] / steady(t) for t in ours)}
        for label, extra in (("jit_off", ["--jit", "off"]), ("jit_on", ["--jit", "on"]),
                             ("bf16", ["--precision", "mixed_bfloat16"])):
            try:
                times, _ = epoch_times(kerastack_cmd(model, backend, epochs, extra), env)
                row[f"{label}_epoch_s"] = steady(times)
            except SystemExit as exc:
                row[f"{label}_epoch_s"] = None
                row[f"{label}_error"] = str(exc).splitlines()[0][:200]
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def startup(runs=7):
    def median_wall(cmd, env=None):
        walls = []
        for _ in range(runs):
            started = time.perf_counter()
            subprocess.run(cmd, capture_output=True, env=dict(os.environ, **(env or {})), check=True)
            walls.append(time.perf_counter() - started)
        return statistics.median(walls)

    heavy = subprocess.run([sys.executable, "-c", "import sys; from core.cli import build_cli; "
                            "from core.plugins import PluginHost; build_cli(PluginHost()); "
                            "print([m for m in ('keras','tensorflow','jax','torch') if m in sys.modules])"],
                           capture_output=True, text=True).stdout.strip()
    out = {"help_s": median_wall([KERASTACK, "--help"]), "plugins_s": median_wall([KERASTACK, "plugins"]),
           "heavy_modules_after_help": heavy}
    for backend in BACKENDS:
        out[f"import_keras_{backend}_s"] = median_wall([sys.executable, "-c", "import keras"],
                                                       {"KERAS_BACKEND": backend})
    return out


def write(results):
    (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = ["# kerastack benchmark", "", f"Measured {results['when']} on {results['machine']}.", "",
             "## Training (steady-state epoch = median of epochs 2..N; medians over repeats)", "",
             "| model | backend | epoch s | samples/s | plain fit epoch s | overhead | 1st epoch / steady | jit off | jit on | bf16 |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    fmt = lambda v: "—" if v is None else f"{v:.2f}"  # noqa: E731
    for r in results["training"]:
        lines.append(f"| {r['model']} | {r['backend']} | {r['epoch_s']:.2f} | {r['samples_per_s']:.0f} | "
                     f"{r['plain_epoch_s']:.2f} | {r['overhead']:.3f}× | {r['first_epoch_ratio']:.1f} | "
                     f"{fmt(r.get('jit_off_epoch_s'))} | {fmt(r.get('jit_on_epoch_s'))} | {fmt(r.get('bf16_epoch_s'))} |")
    s = results["startup"]
    lines += ["", "## Start-up", "", f"- `kerastack --help`: {s['help_s']:.2f} s; `kerastack plugins`: "
              f"{s['plugins_s']:.2f} s; heavy modules imported by building the CLI: {s['heavy_modules_after_help']}",
              "- `import keras`: " + ", ".join(f"{b} {s[f'import_keras_{b}_s']:.1f} s" for b in BACKENDS), ""]
    (HERE / "results.md").write_text("\n".join(lines))
    print("\n".join(lines))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default="cnn/digits,mobilenet/shapes32")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import platform

    results = {"when": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
               "training": [], "startup": startup()}
    sys.path.insert(0, str(ROOT))
    for name in args.models.split(","):
        model = MODELS[name]
        samples = {"digits": 1257, "shapes": int(model["data_options"].get("samples", 1500) * 0.7)}[model["data"]]
        results["training"] += bench_model(name, model, args.backends.split(","), args.epochs, args.repeats, samples)
    write(results)


if __name__ == "__main__":
    main()
