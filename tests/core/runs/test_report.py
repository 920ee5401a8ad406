"""``kerastack report``: one self-contained, escaped HTML file, from run directories written by hand."""

import base64
import json
import os
import re

from conftest import one_line_error, run_cli
from fake_runs import add_tflite_export, make_run

from core.runs.report import exports, metric_table, write_report

PNG = b"\x89PNG\r\n\x1a\n"


def test_report_is_one_self_contained_file(tmp_path):
    run = make_run(tmp_path, hparams={"units": 16})
    add_tflite_export(run)
    path = write_report(run)
    assert path == run / "report.html"
    page = path.read_text()
    assert (run / "curves.png").exists() and (run / "confusion.png").exists()  # made because missing
    images = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,([^"]+)"', page)
    assert [name for name, _ in images] == ["curves.png", "confusion.png"]
    assert all(base64.b64decode(data).startswith(PNG) for _, data in images)
    assert not re.search(r'(src|href)="(?!data:)', page) and "<link" not in page and "<script" not in page
    for text in (
        "cnn-digits: cnn on digits",
        "<th>units</th>",
        "<td>tensorflow</td>",
        "model_int8.tflite",
        "0.8167",
        "0.9833",
        "also: labels.txt",
        "keras</th><td>3.15.1",
    ):
        assert text in page, text


def test_everything_is_escaped(tmp_path):
    run = make_run(tmp_path, "x<y", hparams={"act": "<script>alert('x')</script>"}, data="a&b")
    write_report(run)
    page = (run / "report.html").read_text()
    assert "<script" not in page and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "x&lt;y: cnn on a&amp;b" in page


def test_stale_plots_are_redrawn_and_fresh_ones_kept(tmp_path):
    run = make_run(tmp_path, predictions=False)
    write_report(run)
    curves = run / "curves.png"
    old = curves.stat().st_mtime - 100
    os.utime(curves, (old, old))
    write_report(run)  # history.csv is newer than the plot: redrawn
    assert curves.stat().st_mtime > old
    drawn = curves.stat().st_mtime_ns
    write_report(run)  # up to date: left alone
    assert curves.stat().st_mtime_ns == drawn


def test_metric_table_and_exports_read_what_exists(tmp_path):
    assert metric_table(
        {
            "loss": 0.1,
            "val_loss": 0.2,
            "test_loss": 0.3,
            "val_accuracy": 0.9,
            "epochs": 3,
            "seconds": 1.0,
            "backend": "jax",
        }
    ) == {"loss": {"train": 0.1, "validation": 0.2, "test": 0.3}, "accuracy": {"validation": 0.9}}
    run = make_run(tmp_path, predictions=False)
    assert exports(run) == {}
    out = add_tflite_export(run, verified=False)
    (out / "verify.json").write_text("{torn")  # unreadable metadata: the files are still listed
    (run / "export" / "npz").mkdir()
    (run / "export" / "npz" / "weights.npz").write_bytes(b"1234")
    found = exports(run)
    assert found["npz"] == [{"file": "weights.npz", "size_bytes": 4}]
    int8 = next(r for r in found["tflite"] if r["file"] == "model_int8.tflite")
    assert int8 == {"file": "model_int8.tflite", "size_bytes": 1500, "quantize": "int8", "io": "float", "batch": None}
    # verify.json as a mapping of file name to result works too
    (out / "verify.json").write_text(json.dumps({"model_int8.tflite": {"tflite_accuracy": 0.5}}))
    assert next(r for r in exports(run)["tflite"] if r["file"] == "model_int8.tflite")["tflite_accuracy"] == 0.5


def test_report_command(tmp_path):
    run = make_run(tmp_path)
    add_tflite_export(run)
    proc = run_cli("report", run)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "cnn-digits: cnn on digits"
    assert lines[-1] == f"report: {run / 'report.html'}"
    text = "\n".join(lines)
    assert "accuracy  train 0.8000  validation 0.7500  test 0.7400" in text
    assert "model_int8.tflite  1.5 KiB  accuracy 0.8167  agreement 0.9833  p50 ms 0.021" in text
    assert "labels.txt" not in text  # metadata files are in the page, not the summary
    line = one_line_error(run_cli("report", tmp_path / "nope"), 1)
    assert "nope: no such run directory" in line
