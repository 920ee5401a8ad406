"""``write_export_report``: float32 and int8 .tflite beside Keras, every number from ``verify()``."""

import re
import struct

import pytest
from conftest import read_json, run_python

from tflite.metadata import associated_files, read_metadata

pytestmark = pytest.mark.slow

# One TensorFlow process: train a tiny cnn, export two variants, write the report.
JOB = """
import json, sys
from core import export, train
from plugins.deployment.tflite.report import write_export_report
out = sys.argv[1]
run = train("cnn", "digits", backend="tensorflow", epochs=2, seed=0, out=out, verbose=0,
            hparams={"filters": 8, "dense": 32})
files = export(out, "tflite") + export(out, "tflite", {"quantize": "int8"})
written = write_export_report(out, files, threads=(1, 2), latency_runs=50)
import keras
weights = [w.numpy() for w in keras.saving.load_model(out + "/model.keras").weights]
json.dump({"files": [str(f) for f in files], "written": [str(w) for w in written],
           "weights": {"bytes": sum(w.nbytes for w in weights), "parameters": sum(w.size for w in weights)}},
          open(out + "/job.json", "w"))
"""


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    run = tmp_path_factory.mktemp("export-report") / "run"
    run_python(JOB, run, env={"KERAS_BACKEND": "tensorflow"})
    job = read_json(run / "job.json")
    folder = run / "export" / "tflite"
    return run, folder, job


def table(markdown):
    """{first cell: {column: cell}} of the report's first Markdown table (the per-layer tables follow)."""
    text = markdown.splitlines()
    start = next(i for i, line in enumerate(text) if line.startswith("|"))
    lines = []
    for line in text[start:]:
        if not line.startswith("|"):
            break
        lines.append(line)
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    assert set(lines[1]) <= set("|-: ")
    rows = {}
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0].strip("`")] = dict(zip(head, cells))
    return head, rows


def test_writes_markdown_and_png_beside_the_files(report):
    run, folder, job = report
    assert job["written"] == [str(folder / "report.md"), str(folder / "report.png")]
    assert not [p for p in folder.iterdir() if p.name.startswith(".")], "temporary files left behind"


def test_one_row_per_variant_and_the_keras_baseline(report):
    _, folder, _ = report
    head, rows = table((folder / "report.md").read_text())
    assert head == [
        "model",
        "size",
        "gzip",
        "accuracy",
        "agreement",
        "max abs diff",
        "p50 / p90 ms, 1 thread",
        "p50 / p90 ms, 2 threads",
    ]
    assert list(rows) == ["keras weights", "model_float32.tflite", "model_int8.tflite"]
    # Then the int8 file's per-layer quantization error, by Keras layer name (issue 17).
    layers = (folder / "report.md").read_text().split("## Per-layer quantization error — `model_int8.tflite`")[1]
    assert "| 1 | `" in layers and "Each layer's own error" in layers
    keras = rows["keras weights"]
    assert keras["agreement"] == "—" and keras["p50 / p90 ms, 2 threads"] == "—"
    assert keras["p50 / p90 ms, 1 thread"].endswith("†")


def test_numbers_match_verify_json(report):
    run, folder, _ = report
    _, rows = table((folder / "report.md").read_text())
    recorded = read_json(folder / "verify.json")
    for name in ("model_float32.tflite", "model_int8.tflite"):
        row, v = rows[name], recorded[name]
        assert v["threads"] == 1  # the first thread count is the one recorded
        assert row["size"] == f"{v['size_bytes'] / 1024:.1f} KiB"
        assert row["accuracy"] == f"{v['tflite_accuracy']:.4f}"
        assert row["agreement"] == f"{v['agreement']:.4f}"
        assert row["max abs diff"] == f"{v['max_abs_diff']:.3g}"
        assert row["p50 / p90 ms, 1 thread"] == f"{v['latency_ms_p50']:.3g} / {v['latency_ms_p90']:.3g}"
        p50, p90 = map(float, row["p50 / p90 ms, 2 threads"].split(" / "))
        assert 0 < p50 <= p90
        gzipped = float(row["gzip"].split()[0])
        assert 0 < gzipped < v["size_bytes"] / 1024
    keras_accuracy = recorded["model_float32.tflite"]["keras_accuracy"]
    assert rows["keras weights"]["accuracy"] == f"{keras_accuracy:.4f}"
    # What the report shows is what the models do: float32 is Keras, int8 is a quarter of the size.
    assert recorded["model_float32.tflite"]["max_abs_diff"] < 1e-4
    assert recorded["model_int8.tflite"]["agreement"] >= 0.9
    assert recorded["model_int8.tflite"]["size_bytes"] < 0.6 * recorded["model_float32.tflite"]["size_bytes"]


def test_keras_size_is_the_weights_not_the_optimizer_state(report):
    """Issue 23: the "keras" size was model.keras, two thirds of it Adam's slots, so int8 looked ~10x
    smaller where it is ~4x. The row is the float32 weights, and says what model.keras holds besides."""
    run, folder, job = report
    text = (folder / "report.md").read_text()
    _, rows = table(text)
    weights, keras_file = job["weights"], (run / "model.keras").stat().st_size
    assert rows["keras weights"]["size"] == f"{weights['bytes'] / 1024:.1f} KiB"
    assert weights["bytes"] == 4 * weights["parameters"] and keras_file > 2 * weights["bytes"]
    assert (
        f"keras weights: the Keras model's weights ({weights['parameters']:,} parameters, float32), what the files "
        f"are made from (`model.keras` is {keras_file / 1024:.1f} KiB: it also holds the optimizer's state)."
    ) in text
    float32 = read_json(folder / "verify.json")["model_float32.tflite"]["size_bytes"]
    # The float32 file is the weights, plus the graph, plus its metadata (kerastack's entry, the
    # standard entry and its associated files: labels.txt), which is counted apart.
    path = folder / "model_float32.tflite"
    described = sum(map(len, read_metadata(path).values())) + sum(map(len, associated_files(path).values()))
    assert path.stat().st_size == float32 and 0 < described < 0.5 * float32
    assert 0.9 < (float32 - described) / weights["bytes"] < 1.3
    assert "DELEGATE" not in read_json(folder / "model.json")["files"]["model_int8.tflite"]["ops"]
    assert "**Warnings**" not in text  # a healthy classifier: nothing to say


def test_png_is_a_picture(report):
    _, folder, _ = report
    data = (folder / "report.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width > 800 and height > 300 and len(data) > 10_000


def test_header_names_run_split_and_backend(report):
    run, folder, _ = report
    text = (folder / "report.md").read_text()
    assert text.startswith(f"# Export report — {run.name}: cnn on digits")
    assert re.search(r"Test split, \d+ samples", text) and "under tensorflow" in text


def test_model_json_lists_each_op_with_its_version_and_oldest_runtime(report):
    """Issue 27: what an older runtime must have. The versions are the file's operator codes (read
    here with the schema's object API); the oldest runtime is TensorFlow's table, whose maximum is
    the ``min_runtime_version`` the converter itself wrote into the file."""
    from ai_edge_litert import schema_py_generated as schema

    _, folder, _ = report
    files = read_json(folder / "model.json")["files"]
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    text = (folder / "report.md").read_text()
    section = text.split("## Ops, versions and the oldest runtime")[1]
    for name in ("model_float32.tflite", "model_int8.tflite"):
        entry = files[name]
        model = schema.ModelT.InitFromPackedBuf(bytearray((folder / name).read_bytes()), 0)
        codes = {}
        for op in model.subgraphs[0].operators:
            code = model.operatorCodes[op.opcodeIndex]
            codes.setdefault(names[max(code.builtinCode, code.deprecatedBuiltinCode)], set()).add(code.version)
        assert entry["op_versions"] == {op: sorted(v) for op, v in codes.items()}
        assert set(entry["op_versions"]) == set(entry["ops"])
        assert entry["op_versions"]["FULLY_CONNECTED"][0] >= 1
        runtime = entry["runtime"]
        assert set(runtime["ops"]) == {f"{op} v{v}" for op, vs in codes.items() for v in vs}
        assert runtime["unknown"] == [k for k, v in runtime["ops"].items() if v is None]
        # The table's answer over these ops is the converter's own entry in the file.
        assert runtime["min_runtime"] == runtime["converter_min_runtime_version"]
        assert re.fullmatch(r"\d+\.\d+\.\d+", runtime["min_runtime"])
        row = next(line for line in section.splitlines() if line.startswith(f"| `{name}`"))
        assert f"FULLY_CONNECTED v{entry['op_versions']['FULLY_CONNECTED'][0]} (" in row
        assert row.endswith(f"| {runtime['min_runtime']} |")
    # int8 kernels are later versions of the same ops: the int8 file needs a newer runtime.
    float32, int8 = files["model_float32.tflite"], files["model_int8.tflite"]
    assert int8["op_versions"]["FULLY_CONNECTED"] > float32["op_versions"]["FULLY_CONNECTED"]
    version = lambda e: tuple(map(int, e["runtime"]["min_runtime"].split(".")))  # noqa: E731
    assert version(int8) > version(float32)
