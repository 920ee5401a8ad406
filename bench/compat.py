"""`make compat`: every zoo family's float32 and int8 files on an older runtime, tflite-runtime 2.14.0
(the side venv `.venv-compat/`, numpy < 2: requirements-compat.txt), against the project's LiteRT on
the same input tensors. Writes bench/compat.md and bench/compat.json. Not run by CI.

    python bench/compat.py [--side .venv-compat/bin/python] [--only cnn,unet] [--epochs 1]

Each family (bench/zoo.py's FAMILIES) is trained briefly under TensorFlow: the files' ops and their
versions are what is measured, not the models' accuracy. Both runtimes run bench/compat_runtime.py
(numpy and the interpreter only) on the first samples of the test split.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
SAMPLES = 8
# Each family's float32 and int8 files (default options: io=auto); and on two families, the other
# interfaces and modes: their op versions are the ones the converter's table rates newest.
VARIANTS = [("float32", {"quantize": "none"}), ("int8", {"quantize": "int8"})]
EXTRA = {
    ("mobilenet", "shapes"): [("int8 io=uint8", {"quantize": "int8", "io": "uint8"})],
    ("cnn", "digits"): [
        ("float16", {"quantize": "float16"}),
        ("dynamic", {"quantize": "dynamic"}),
        ("int16x8", {"quantize": "int16x8"}),
    ],
}


def main():
    sys.path.insert(0, str(HERE))
    from zoo import FAMILIES

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--side", default=str(HERE.parent / ".venv-compat" / "bin" / "python"))
    parser.add_argument("--only", default="")
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    only = set(filter(None, args.only.split(",")))
    root = Path(tempfile.mkdtemp(prefix="compat-"))
    jobs, rows = [], []
    for arch, data, hparams, options, _, _ in FAMILIES:
        if only and arch not in only:
            continue
        rows += family_files(root / f"{arch}-{data}", arch, data, hparams, options, args.epochs, jobs)
    (root / "jobs.json").write_text(json.dumps(jobs))
    results = {}
    for name, python in (("litert", sys.executable), ("old", args.side)):
        subprocess.run([python, str(HERE / "compat_runtime.py"), root / "jobs.json", root / f"{name}.json"], check=True)
        results[name] = json.loads((root / f"{name}.json").read_text())
    for row in rows:
        row.update(compare(row, results))
    write(rows, results)


def family_files(run_dir, arch, data, hparams, options, epochs, jobs):
    """Train, export each variant, and prepare each file's inputs. Each file is copied under a name
    of its own (``io=uint8`` writes ``model_int8.tflite`` again)."""
    from core import as_arrays, export, load_dataset, load_run, train

    row = {"arch": arch, "data": data}
    try:
        train(
            arch,
            data,
            backend="tensorflow",
            hparams=hparams,
            data_options=options,
            epochs=epochs,
            seed=0,
            out=run_dir,
            verbose=0,
        )
    except Exception as exc:
        return [{**row, "variant": v, "error": f"training: {one_line(exc)}"} for v in ("float32", "int8")]
    dataset = load_dataset(load_run(run_dir))
    x, _ = as_arrays(dataset.test if dataset.test is not None else dataset.train, limit=SAMPLES)
    out = []
    for variant, export_options in VARIANTS + EXTRA.get((arch, data), []):
        try:
            exported = export(run_dir, "tflite", export_options)[0]
        except Exception as exc:
            out.append({**row, "variant": variant, "error": f"export: {one_line(exc)}"})
            continue
        facts = file_facts(exported)
        path = run_dir / f"compat_{variant.replace(' ', '_').replace('=', '-')}.tflite"
        shutil.copyfile(exported, path)
        inputs = write_inputs(path, np.asarray(x)[:SAMPLES])
        jobs.append({"file": str(path), "inputs": str(inputs)})
        out.append({**row, "variant": variant, "file": str(path), **facts})
    return out


def write_inputs(path, x):
    """``<file>.inputs.npz``: the test samples for an input they fit, seeded noise for any other
    (a generator's latent vector, a diffusion model's time step)."""
    from ai_edge_litert.interpreter import Interpreter

    details = Interpreter(model_path=str(path)).get_input_details()
    rng = np.random.default_rng(0)
    arrays = {}
    for i, d in enumerate(details):
        shape = [len(x)] + [int(s) for s in d["shape_signature"][1:]]
        fits = list(x.shape[1:]) == shape[1:]
        arrays[f"in{i}"] = x if fits else rng.standard_normal(shape).astype(np.float32)
    target = Path(f"{path}.inputs.npz")
    np.savez(target, **arrays)
    return target


def file_facts(path):
    """What model.json records of the file: its input type, its ops with their versions and the
    oldest runtime the converter's table gives each, and the converter's own ``min_runtime_version``."""
    from core import read_json

    entry = read_json(Path(path).parent / "model.json", "metadata file")["files"][Path(path).name]
    runtime = entry.get("runtime") or {}
    return {
        "input_dtype": entry["input"]["dtype"],
        "op_versions": entry.get("op_versions"),
        "table_min_runtime": runtime.get("min_runtime"),
        "table_ops": runtime.get("ops"),
        "converter_min_runtime": runtime.get("converter_min_runtime_version"),
    }


def compare(row, results):
    """loads/runs on the old runtime, and the max abs diff of its outputs from LiteRT's."""
    if "file" not in row:
        return {}
    new, old = results["litert"]["files"][row["file"]], results["old"]["files"][row["file"]]
    found = {"loads": old["loads"], "runs": old["runs"], "old_error": old.get("error")}
    if old["runs"] and new["runs"]:
        a, b = np.load(new["outputs"]), np.load(old["outputs"])
        found["max_abs_diff"] = max(float(np.abs(a[k] - b[k]).max()) for k in a.files)
        found["output_scale"] = new["output_scale"]
    elif not new["runs"]:
        found["litert_error"] = new.get("error")
    return found


def one_line(exc):
    return " ".join(str(exc).split())[:200]


def write(rows, results):
    old = results["old"]
    (HERE / "compat.json").write_text(
        json.dumps({"runtime": {k: old[k] for k in ("runtime", "version", "numpy")}, "files": rows}, indent=2) + "\n"
    )
    lines = [
        "# Older runtime: tflite-runtime " + old["version"],
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} CPU cores by `make compat`: each zoo family trained "
        f"1 epoch under TensorFlow, exported float32 and int8 (default options, io=auto), then run on "
        f"{old['runtime']} {old['version']} (numpy {old['numpy']}) and on the project's LiteRT "
        f"(ai_edge_litert) with the same {SAMPLES} input tensors. max abs diff: between the two runtimes' "
        "(dequantized) outputs, and in steps of an integer output's scale. oldest runtime (table): the converter's table "
        "(`tflite::FindMinimumRuntimeVersionForOp`) over the file's op versions; converter entry: the "
        "`min_runtime_version` the converter wrote into the file.",
        "",
        "| family | data | variant | input | loads | runs | max abs diff | oldest runtime (table) | converter entry |",
        "|---|---|---|---|---|---|---:|---|---|",
    ]
    yes = lambda v: "yes" if v else "**no**"  # noqa: E731
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['arch']} | {r['data']} | {r['variant']} | — | — | — | {r['error']} | — | — |")
            continue
        diff = f"{r['max_abs_diff']:.3g}" if r.get("max_abs_diff") is not None else (r.get("old_error") or "—")
        if r.get("max_abs_diff") and r.get("output_scale"):
            steps = r["max_abs_diff"] / r["output_scale"]
            diff += f" ({steps:.3g} step{'' if round(steps, 3) == 1 else 's'})"
        lines.append(
            f"| {r['arch']} | {r['data']} | {r['variant']} | {r['input_dtype']} | {yes(r['loads'])} | "
            f"{yes(r['runs'])} | {diff} | {r['table_min_runtime'] or '—'} | {r['converter_min_runtime'] or '—'} |"
        )
    notes = (HERE / "compat.md").read_text().partition("\nNotes:")[2] if (HERE / "compat.md").exists() else ""
    if notes:
        lines += ["", "Notes:" + notes.rstrip("\n")]
    (HERE / "compat.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
