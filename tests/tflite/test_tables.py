"""``python -m tflite MODEL --input rows.csv --normalize`` on a model trained on the ``csv`` dataset:
raw table rows (numbers, a text column, missing cells) encoded on the device as training encoded
them (``tflite/tables.py`` against ``plugins/datasets/csv_table.py``), so the device runner's
predictions on raw rows equal verify's on the same rows of the test split (issue 23)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import run_python

from plugins.datasets import _files, csv_table
from tflite import tables

REPO = Path(__file__).resolve().parents[2]
COLOURS = ("red", "green", "blue")


def write_table(path, n=240, seed=0):
    """Two numeric columns, one text column (a missing cell or two of each), a numeric target."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(20, 5, n), rng.uniform(0, 3, n)
    colour = rng.choice(COLOURS, n)
    y = 2 * a - 3 * b + np.select([colour == "red", colour == "blue"], [10.0, -10.0], 0.0)
    rows = [[f"{a[i]:.3f}", f"{b[i]:.3f}", colour[i], f"{y[i]:.3f}"] for i in range(n)]
    rows[3][0], rows[7][2], rows[11][1] = "", "NA", "n/a"
    path.write_text("\n".join([",".join(["a", "b", "colour", "y"]), *(",".join(r) for r in rows)]) + "\n")
    return path


def test_device_encoding_is_trainings(tmp_path):
    """The same numbers as the training table's encoding, and the same texts for a missing cell."""
    assert tables.MISSING == _files.MISSING and tables.MISSING_CATEGORY == csv_table.MISSING_CATEGORY
    path = write_table(tmp_path / "t.csv")
    dataset = csv_table.load(path=str(path), target="y")
    columns = dataset.preprocessing["columns"]
    assert [c["kind"] for c in columns] == ["numeric", "numeric", "onehot"]
    header, rows = tables.read_rows(path)
    trained = csv_table.encode_columns([[r[header.index(c["name"])] for r in rows] for c in columns], columns)
    np.testing.assert_array_equal(tables.encode_rows(header, rows, columns), trained)
    # A .npy of raw numbers goes through the numeric columns' standardization; text needs the rows.
    with pytest.raises(ValueError, match="'colour' are categories"):
        tables.standardize(np.zeros((2, 3)), columns)
    numeric = [c for c in columns if c["kind"] == "numeric"]
    raw = np.array([[20.0, 1.5]])
    expected = (raw - [c["mean"] for c in numeric]) / [c["std"] for c in numeric]
    np.testing.assert_allclose(tables.standardize(raw, numeric), expected, rtol=1e-6)


# One TensorFlow process: train an mlp on the table, export float32 and int8, keep the test split's
# raw rows and what verify's LiteRT side predicts for them (the dataset's own encoding).
JOB = """
import json, sys
import numpy as np
from core import export, load_dataset, load_run, train
from plugins.datasets._files import read_table, split_indices
from tflite import TFLiteModel
path, out = sys.argv[1], sys.argv[2]
train("mlp", "csv", backend="tensorflow", epochs=2, seed=0, out=out, verbose=0, hparams={"units": [16]},
      data_options={"path": path, "target": "y"})
files = [p for p in export(out, "tflite", {"quantize": "none,int8"}) if p.suffix == ".tflite"]
header, rows, _ = read_table(path, ",", "test")
_, _, test = split_indices(len(rows), {"validation": 0.15, "test": 0.15}, 0, "test", "rows")
with open(f"{out}/test_rows.csv", "w") as f:
    f.write("\\n".join([",".join(header)] + [",".join(rows[i]) for i in test]) + "\\n")
x = load_dataset(load_run(out)).test[0]
json.dump({p.name: TFLiteModel(p).predict(x).tolist() for p in files}, open(f"{out}/expected.json", "w"))
"""


@pytest.fixture(scope="module")
def csv_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("csv-run")
    run = folder / "run"
    run_python(JOB, write_table(folder / "table.csv"), run, env={"KERAS_BACKEND": "tensorflow"})
    return run


@pytest.mark.slow
@pytest.mark.parametrize("name", ["model_float32.tflite", "model_int8.tflite"])
def test_raw_rows_predict_as_verify_does(csv_run, name):
    lite = csv_run / "export" / "tflite" / name
    proc = cli(lite, "--input", csv_run / "test_rows.csv", "--normalize", "--json")
    assert proc.returncode == 0, proc.stderr
    got = [p["output"] for p in json.loads(proc.stdout)["predictions"]]
    expected = json.loads((csv_run / "expected.json").read_text())[name]
    np.testing.assert_array_equal(np.array(got, np.float32), np.array(expected, np.float32))


@pytest.mark.slow
def test_raw_rows_need_normalize_and_every_column(csv_run, tmp_path):
    lite = csv_run / "export" / "tflite" / "model_float32.tflite"
    proc = cli(lite, "--input", csv_run / "test_rows.csv")
    assert proc.returncode == 2 and "pass --normalize to encode them" in proc.stderr, proc.stderr
    (tmp_path / "short.csv").write_text("a,colour\n1.0,red\n")
    proc = cli(lite, "--input", tmp_path / "short.csv", "--normalize")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("tflite: error: --normalize: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert "no column 'b' in its header; the model takes the columns a, b, colour" in proc.stderr


def cli(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "tflite", *map(str, args)], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
