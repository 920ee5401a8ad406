"""Regression targets standardized on the training split, scaled back inside the model (issue 23)."""

import numpy as np
import pytest

from core.engine.targets import STREAM_BATCHES, statistics, train_statistics


def test_statistics_per_output_from_samples():
    y = np.array([[1.0, 10.0], [3.0, 10.0], [5.0, 10.0]], dtype="float32")
    stats = statistics(y)
    assert stats["mean"] == pytest.approx([3.0, 10.0]) and stats["samples"] == 3
    assert stats["std"] == pytest.approx([np.std([1, 3, 5]), 1.0])  # a constant target keeps std 1
    assert statistics(np.array([2.0, 4.0]))["mean"] == [3.0]  # 1-D targets: one output
    assert statistics(np.array([1.0, np.nan])) is None


class Stream:
    """A streamed split as Keras's PyDataset gives it: batches by index."""

    def __init__(self, batches, targets=True):
        self.batches, self.targets, self.read = batches, targets, []

    def __len__(self):
        return self.batches

    def __getitem__(self, i):
        self.read.append(i)
        y = np.full((2, 1), float(i))
        return (np.zeros((2, 3)), y) if self.targets else np.zeros((2, 3))


def test_a_stream_is_measured_on_batches_spread_over_it():
    stream = Stream(100)
    stats, reason = train_statistics(stream)
    assert reason is None and len(stream.read) == STREAM_BATCHES and stream.read[0] == 0 and stream.read[-1] == 99
    assert stats["samples"] == 2 * STREAM_BATCHES and stats["mean"] == pytest.approx([np.mean(stream.read)])
    assert train_statistics(Stream(3))[0]["samples"] == 6
    assert train_statistics(Stream(3), processes=2) == (
        None,
        "each of the 2 processes streams its own share of the train split",
    )
    assert train_statistics(Stream(3, targets=False)) == (None, "the train split has no targets")


def write_series(path, rows=700, window=8):
    """A noisy sine series around 50 (std ~7), windowed into a CSV: ``window`` past values, then ``y``."""
    rng = np.random.default_rng(0)
    s = 50 + 10 * np.sin(2 * np.pi * np.arange(rows + window) / 25) + rng.normal(0, 0.5, rows + window)
    lines = [",".join(f"x{i}" for i in range(window)) + ",y"]
    lines += [",".join(f"{v:.4f}" for v in s[i : i + window + 1]) for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


# One process per backend: the series, 5 epochs, standardized (and under JAX also not, then exported
# to a float .tflite through TensorFlow and verified); the layer's edge cases under torch.
JOB = """
import json, sys
import numpy as np
import keras
from core import DataSpec, export, train, verify
from core.engine.targets import LAYER, standardize
from tflite import TFLiteModel
backend, out, series = sys.argv[1:4]
report = {}
common = dict(backend=backend, epochs=5, seed=0, verbose=0, checkpoint_every=0)
run = train("mlp", "csv", data_options={"path": series, "target": "y"}, out=out + "/scaled", **common)
report["scaled"] = {"metrics": run.metrics, "spec": run.record["spec"], "last": run.model.layers[-1].name}
if backend == "jax":
    raw = train("mlp", "csv", data_options={"path": series, "target": "y"}, out=out + "/raw",
                standardize_targets=False, **common)
    report["raw"] = {"metrics": raw.metrics, "spec": raw.record["spec"], "layers": [l.name for l in raw.model.layers]}
    path = [p for p in export(run.path, "tflite", {"quantize": "none"}) if str(p).endswith(".tflite")][0]
    report["verify"] = verify(path, run.path, latency_runs=5)
    report["ops"] = TFLiteModel(str(path)).op_names()
    # QAT fine-tunes the deployed model, its target scaling folded into the last Dense: int8 throughout.
    path = [p for p in export(run.path, "tflite", {"qat": "native"}) if str(p).endswith(".tflite")][0]
    report["qat_verify"] = verify(path, run.path, latency_runs=5)
    x = np.random.default_rng(1).normal(size=(300, 8)).astype("float32")
    y = (1000 - 40 * x[:, 0] + 20 * x[:, 1]).astype("float32")
    np.savez(out + "/table.npz", x_train=x, y_train=y)
    table = train("mlp", "npz", data_options={"path": out + "/table.npz"}, out=out + "/npz", **common)
    report["npz"] = {"spec": table.record["spec"], "metrics": table.metrics}
if backend == "torch":
    tab = train("mlp", "diabetes", out=out + "/diabetes", **common)
    report["diabetes"] = {"spec": tab.record["spec"], "metrics": tab.metrics}
    spec = DataSpec((4,), task="regression")
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    y = (50 + 7 * x[:, :1]).astype("float32")

    class Sub(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.dense = keras.layers.Dense(1)

        def call(self, inputs):
            return self.dense(inputs)

    def outcome(model):
        wrapped, entry = standardize(keras, model, spec, (x, y))
        if "skipped" in entry:
            return entry["skipped"]
        z = np.asarray(model.predict(x, verbose=0))
        return float(np.abs(np.asarray(wrapped.predict(x, verbose=0)) - (z * entry["std"][0] + entry["mean"][0])).max())

    inputs = keras.Input((4,))
    seq = lambda activation=None: keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation=activation)])
    report["cases"] = {
        "subclassed": outcome(Sub()),
        "sequential": outcome(seq()),
        "sigmoid": outcome(seq("sigmoid")),
        "two_outputs": outcome(keras.Model(inputs, [keras.layers.Dense(1)(inputs), keras.layers.Dense(1)(inputs)])),
    }
json.dump(report, open(out + "/report.json", "w"))
"""


@pytest.fixture(scope="module")
def series_runs(tmp_path_factory):
    from conftest import read_json, run_python

    root = tmp_path_factory.mktemp("targets")
    series = write_series(root / "series.csv")
    reports = {}
    for backend in ("jax", "torch"):
        run_python(JOB, backend, root / backend, series, env={"KERAS_BACKEND": backend})
        reports[backend] = read_json(root / backend / "report.json")
    return series, reports


def mean_baseline(series):
    """The test MAE of the naive forecast that always says the training split's mean."""
    from plugins.datasets.csv_table import load

    dataset = load(str(series), target="y")
    return float(np.mean(np.abs(dataset.test[1] - dataset.train[1].mean())))


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_the_series_learns_in_5_epochs_in_its_own_units(series_runs, backend):
    series, reports = series_runs
    scaled, baseline = reports[backend]["scaled"], mean_baseline(series)
    # Without the scaling, 5 epochs leave the output far from 50 (test MAE 14, the baseline ~6.4).
    assert scaled["metrics"]["test_mae"] < 0.3 * baseline, (scaled["metrics"], baseline)
    entry = scaled["spec"]["target_scaling"]
    assert entry["layer"] == scaled["last"] == "target_scaling"
    assert entry["mean"][0] == pytest.approx(50, abs=1) and entry["std"][0] == pytest.approx(7.1, abs=0.3)
    assert entry["samples"] == 490  # the training split's: 70 % of 700 rows


@pytest.mark.slow
def test_without_it_the_series_has_not_learned_and_nothing_is_recorded(series_runs):
    series, reports = series_runs
    raw = reports["jax"]["raw"]
    assert raw["metrics"]["test_mae"] > mean_baseline(series), raw["metrics"]
    assert "target_scaling" not in raw["spec"] and "target_scaling" not in raw["layers"]


@pytest.mark.slow
def test_the_exported_tflite_outputs_the_targets_units(series_runs):
    _, reports = series_runs
    checked, scaled = reports["jax"]["verify"], reports["jax"]["scaled"]["metrics"]
    assert checked["tflite_mae"] == pytest.approx(checked["keras_mae"], rel=1e-4), checked
    assert checked["keras_mae"] == pytest.approx(scaled["test_mae"], rel=1e-4), (checked, scaled)


@pytest.mark.slow
def test_the_exported_files_fold_the_scaling_into_the_last_layer_and_qat_keeps_int8(series_runs):
    _, reports = series_runs
    ops = reports["jax"]["ops"]
    assert "FULLY_CONNECTED" in ops and not {"MUL", "ADD"} & set(ops), ops  # folded: no MUL, ADD after it
    checked = reports["jax"]["qat_verify"]  # the QAT export refused a float island before the fold
    assert checked["tflite_mae"] <= 1.2 * checked["keras_mae"], checked


@pytest.mark.slow
def test_npz_and_diabetes_record_their_training_splits_statistics(series_runs):
    from plugins.datasets.tabular import load

    _, reports = series_runs
    npz = reports["jax"]["npz"]["spec"]["target_scaling"]
    assert npz["mean"][0] == pytest.approx(1000, abs=10) and npz["std"][0] == pytest.approx(44.7, rel=0.15)
    y = load("diabetes").train[1]
    diabetes = reports["torch"]["diabetes"]["spec"]["target_scaling"]
    assert diabetes["mean"] == pytest.approx([float(y.mean())]) and diabetes["std"] == pytest.approx([float(y.std())])


@pytest.mark.slow
def test_subclassed_and_sequential_models_are_wrapped_and_the_others_left_alone(series_runs):
    _, reports = series_runs
    cases = reports["torch"]["cases"]
    assert cases["subclassed"] <= 1e-4 and cases["sequential"] <= 1e-4, cases
    assert cases["sigmoid"] == "its output layer ends in sigmoid (rescaling would move the range it keeps to)"
    assert cases["two_outputs"] == "the model has 2 outputs (which target goes to which is not known)"
