"""core.deploy.verify and core.deploy.compare without a model: what every exporter's check shares
(which inputs, which numbers, where they are kept) and verify()'s errors before any conversion.
A stand-in with ``input_shape`` plays the model; verify() on a real .tflite is tested with training."""

import gzip
import json
from types import SimpleNamespace

import numpy as np
import pytest
from fake_runs import make_run

from core.data import Dataset
from core.deploy.compare import (
    compare_outputs,
    evaluation_data,
    gzip_size,
    input_fits,
    record_result,
    sample_inputs,
    time_calls,
)
from core.deploy.verify import verify
from core.errors import KerastackError


def model(*shape):
    return SimpleNamespace(input_shape=(None, *shape))


def data(n_test=6, features=3):
    rng = np.random.default_rng(1)
    train = (rng.random((20, features), dtype="float32"), np.arange(20) % 2)
    test = (np.arange(n_test * features, dtype="float32").reshape(n_test, features), np.arange(n_test) % 2)
    return Dataset(train=train, test=test)


# -- which inputs ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("model_shape", "data_shape", "fits"),
    [
        ((3,), (3,), True),
        ((None,), (7,), True),
        ((28, 28, 1), (28, 28, 1), True),
        ((None, None, 3), (32, 16, 3), True),
        ((), (), True),
        ((4,), (3,), False),
        ((28, 28, 1), (28, 28), False),
        ((28, 28), (28, 28, 1), False),
        ((None, 3), (5, 4), False),
    ],
)
def test_input_fits(model_shape, data_shape, fits):
    assert input_fits(model_shape, data_shape) is fits


def test_sample_inputs_from_the_evaluation_split():
    dataset = data()
    x = sample_inputs(model(3), dataset, 4)
    np.testing.assert_array_equal(x, dataset.test[0][:4])


def test_sample_inputs_are_seeded_noise_without_a_fitting_dataset():
    noise = sample_inputs(model(2, 5), None, 8)
    assert noise.shape == (8, 2, 5) and noise.dtype == np.float32
    np.testing.assert_array_equal(noise, sample_inputs(model(2, 5), None, 8))  # seed 0 by default
    assert not np.array_equal(noise, sample_inputs(model(2, 5), None, 8, seed=1))
    # data of another shape (a generator's inputs are latent vectors): noise of the model's shape
    other = sample_inputs(model(16), data(features=3), 5)
    assert other.shape == (5, 16)
    np.testing.assert_array_equal(other, sample_inputs(model(16), None, 5))


def test_evaluation_data_uses_the_evaluation_split_when_it_fits():
    dataset = data(n_test=6)
    name, x, y = evaluation_data(model(3), dataset)
    assert name == "test" and x is dataset.test[0] and y is dataset.test[1]
    name, x, y = evaluation_data(model(None), dataset, limit=4)
    assert (name, len(x), len(y)) == ("test", 4, 4)
    only_train = Dataset(train=dataset.train)
    assert evaluation_data(model(3), only_train)[0] == "train"


def test_evaluation_data_falls_back_to_noise():
    name, x, y = evaluation_data(model(8), data(features=3))
    assert (name, x.shape, y) == ("random", (256, 8), None)
    name, x, y = evaluation_data(model(4, 2), data(features=3), limit=10)
    assert (name, x.shape, y) == ("random", (10, 4, 2), None)


# -- which numbers ----------------------------------------------------------------------------------------
def test_compare_outputs_for_classification():
    keras_out = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    out = np.array([[0.8, 0.2], [0.3, 0.7], [0.4, 0.6], [0.3, 0.7]])  # sample 2 flips
    y = np.array([[0], [1], [1], [0]])  # labels as a column: flattened
    got = compare_outputs(keras_out, out, y, "classification")
    assert got == pytest.approx(
        {"samples": 4, "max_abs_diff": 0.2, "accuracy": 0.75, "keras_accuracy": 0.5, "agreement": 0.75}
    )
    assert type(got["samples"]) is int and all(type(v) is float for k, v in got.items() if k != "samples")


def test_compare_outputs_without_labels_or_task_compares_outputs_only():
    keras_out = np.zeros((3, 2), dtype="float32")
    out = np.array([0.0, 0.5, 0.0, 0.0, -0.25, 0.0])  # flat: reshaped to keras_out's shape
    for y, task in ((None, "classification"), (np.zeros(3), None), (np.zeros(3), "generation")):
        assert compare_outputs(keras_out, out, y, task) == {"samples": 3, "max_abs_diff": 0.5}


def test_compare_outputs_for_regression_and_reconstruction():
    keras_out = np.array([[1.0], [2.0], [3.0]])
    out = np.array([[1.5], [2.0], [2.0]])
    y = np.array([1.0, 2.0, 4.0])
    got = compare_outputs(keras_out, out, y, "regression")
    assert got == pytest.approx({"samples": 3, "max_abs_diff": 1.0, "mae": 2.5 / 3, "keras_mae": 1 / 3})
    x = np.ones((2, 2, 2))
    got = compare_outputs(np.ones((2, 2, 2)), np.full((2, 2, 2), 3.0), x, "reconstruction")
    assert got == pytest.approx({"samples": 2, "max_abs_diff": 2.0, "mse": 4.0, "keras_mse": 0.0})


def test_compare_outputs_refuses_outputs_of_another_size():
    with pytest.raises(ValueError):
        compare_outputs(np.zeros((3, 2)), np.zeros((3, 3)))


def test_time_calls_times_runs_after_warmup():
    calls = []
    p50, p90 = time_calls(lambda: calls.append(1), runs=7, warmup=3)
    assert len(calls) == 10
    assert 0 <= p50 <= p90 and isinstance(p50, float)


def test_gzip_size(tmp_path):
    path = tmp_path / "m.bin"
    path.write_bytes(b"\0" * 10_000)
    assert gzip_size(path) == len(gzip.compress(b"\0" * 10_000, compresslevel=9, mtime=0)) < 100
    assert gzip_size(path) == gzip_size(str(path))  # the same bytes each time: no timestamp


# -- where they are kept ----------------------------------------------------------------------------------
def test_record_result_keeps_one_entry_per_file(tmp_path):
    first, second = tmp_path / "model_float32.tflite", tmp_path / "model_int8.tflite"
    record = record_result(first, {"samples": 10, "max_abs_diff": 0.0})
    assert record == tmp_path / "verify.json"
    record_result(second, {"samples": 10, "max_abs_diff": 0.01})
    record_result(first, {"samples": 20, "max_abs_diff": 0.5})  # replaces the first entry
    known = json.loads(record.read_text())
    assert known == {
        "model_float32.tflite": {"samples": 20, "max_abs_diff": 0.5, "file": str(first)},
        "model_int8.tflite": {"samples": 10, "max_abs_diff": 0.01, "file": str(second)},
    }
    assert [p.name for p in tmp_path.iterdir()] == ["verify.json"]  # no temporary file left


def test_record_result_replaces_a_damaged_record(tmp_path):
    (tmp_path / "verify.json").write_text('{"model.onnx": {"samples": 3')  # torn by a crash
    record_result(tmp_path / "model.onnx", {"samples": 4})
    assert json.loads((tmp_path / "verify.json").read_text()) == {
        "model.onnx": {"samples": 4, "file": str(tmp_path / "model.onnx")}
    }


@pytest.mark.parametrize(
    "old",
    [
        [{"file": "/elsewhere/model_int8.tflite", "samples": 60}, "not a result"],  # a list (fake_runs' shape)
        {"file": "/elsewhere/model_int8.tflite", "samples": 60},  # one result
    ],
)
def test_record_result_keeps_the_results_of_an_older_record(tmp_path, old):
    (tmp_path / "verify.json").write_text(json.dumps(old))
    record_result(tmp_path / "model_float32.tflite", {"samples": 5})
    known = json.loads((tmp_path / "verify.json").read_text())
    assert known == {
        "model_int8.tflite": {"file": "/elsewhere/model_int8.tflite", "samples": 60},
        "model_float32.tflite": {"samples": 5, "file": str(tmp_path / "model_float32.tflite")},
    }


@pytest.mark.parametrize("foreign", ["3", '"text"', "null"])
def test_record_result_replaces_a_record_that_is_no_mapping(tmp_path, foreign):
    (tmp_path / "verify.json").write_text(foreign)
    record_result(tmp_path / "m.tflite", {"samples": 1})
    assert list(json.loads((tmp_path / "verify.json").read_text())) == ["m.tflite"]


def test_record_result_numbers_from_numpy(tmp_path):
    record_result(tmp_path / "m.tflite", {"max_abs_diff": np.float32(0.5), "outputs": np.arange(2)})
    assert json.loads((tmp_path / "verify.json").read_text())["m.tflite"]["outputs"] == [0, 1]


# -- verify()'s errors before any model is loaded ------------------------------------------------------
def test_verify_needs_a_run_directory(tmp_path):
    with pytest.raises(KerastackError, match="no such run directory"):
        verify(tmp_path / "model.tflite", tmp_path / "missing")
    (tmp_path / "not-a-run").mkdir()
    with pytest.raises(KerastackError, match=r"run.json: no such run record \(is this a kerastack run directory\?\)"):
        verify(tmp_path / "model.tflite", tmp_path / "not-a-run")


def test_verify_names_a_missing_or_broken_tflite(tmp_path):
    run = make_run(tmp_path)
    missing = run / "export" / "tflite" / "model.tflite"
    with pytest.raises(KerastackError) as info:
        verify(missing, run)
    assert str(info.value) == f"{missing}: no such file"
    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(b"not a flatbuffer at all" * 10)
    with pytest.raises(KerastackError, match=rf"^{garbage}: not a valid .tflite model"):
        verify(garbage, run)
    assert not (tmp_path / "verify.json").exists()  # nothing recorded for a failure


# -- what verify says of the outputs (issue 23) -------------------------------------------------------------
def test_constant_keras_outputs_are_said():
    """A model whose outputs are the same for every sample: any two such models agree, so agreement
    says nothing. Outputs that vary (by more than 1e-6 of their size) are not constant."""
    from core.deploy.verify import _Totals
    from core.task import task_named

    y = np.array([0, 1, 2, 1])
    constant = np.tile([0.2, 0.5, 0.3], (4, 1)).astype("float32")
    constant[1, 0] += 1e-9  # features of 1e-10 under a softmax: differences far below float32's resolution of it
    totals = _Totals(task_named("classification"))
    totals.add(np.zeros((4, 2)), y, constant, constant)
    got = totals.metrics()
    assert got["agreement"] == 1.0 and got["keras_outputs_constant"] is True
    assert got["warnings"][0].startswith("Keras's outputs are the same for every sample: agreement means nothing")
    varying = constant.copy()
    varying[2] = [0.3, 0.4, 0.3]
    totals = _Totals(task_named("classification"))
    totals.add(np.zeros((4, 2)), y, varying, varying)
    assert "keras_outputs_constant" not in totals.metrics() and "warnings" not in totals.metrics()


def test_clipped_regression_outputs_are_counted():
    """At a limit of the file's integer output while Keras's value lies beyond it: clipped. A 0 limit is
    no evidence (a ReLU output sits there), nor an output at the limit that Keras also gives."""
    from core.deploy.verify import _Totals
    from core.task import task_named

    limits = (0.0, 62.25)
    keras_out = np.array([[70.0], [62.25], [50.0], [-3.0], [64.0]], "float32")
    lite_out = np.clip(keras_out, *limits)
    totals = _Totals(task_named("regression"), limits)
    totals.add(np.zeros((5, 1)), np.full(5, 60.0), lite_out, keras_out)
    got = totals.metrics()
    assert got["clipped_outputs"] == 2 and got["output_limits"] == [0.0, 62.25]
    totals = _Totals(task_named("regression"), None)  # a float output: nothing to count
    totals.add(np.zeros((5, 1)), np.full(5, 60.0), keras_out, keras_out)
    assert "clipped_outputs" not in totals.metrics()
