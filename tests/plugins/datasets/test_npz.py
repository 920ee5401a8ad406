"""``npz``: your own arrays — given splits kept, missing ones cut, dtypes, labels, task, errors."""

import json

import numpy as np
import pytest
from conftest import one_line_error, run_cli

from core import KerastackError, PluginHost, UsageError
from core.data import check_dataset, spec_of
from plugins.datasets.npz import load

rng = np.random.default_rng(0)


def save(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


def splits(dataset):
    return dataset.train, dataset.validation, dataset.test


def test_registered_with_its_options(tmp_path):
    host = PluginHost(["plugins.datasets.npz"], builtins=(), entry_points=False, disabled=())
    entry = host.registry("dataset").get("npz")
    assert entry.defaults == {"path": "", "task": "auto", "validation": 0.15, "test": 0.15, "seed": 0}
    path = save(tmp_path / "d.npz", x_train=rng.random((40, 3)), y_train=np.arange(40) % 2)
    dataset = entry.call(**entry.options({"path": path}))
    check_dataset(dataset, "npz")
    spec = spec_of(dataset)
    assert spec.input_shape == (3,) and spec.num_classes == 2 and spec.class_names == ("0", "1")


def test_given_splits_are_kept_and_missing_ones_cut_from_train(tmp_path):
    x, y = rng.random((100, 4)), np.arange(100) % 4
    full = load(
        save(
            tmp_path / "full.npz",
            x_train=x[:60],
            y_train=y[:60],
            x_val=x[60:80],
            y_val=y[60:80],
            x_test=x[80:],
            y_test=y[80:],
        )
    )
    np.testing.assert_array_equal(full.validation[0], x[60:80].astype("float32"))
    np.testing.assert_array_equal(full.test[1], y[80:])
    assert [len(s[0]) for s in splits(full)] == [60, 20, 20]

    only_train = load(save(tmp_path / "train.npz", x_train=x, y_train=y), seed=3)
    assert [len(s[0]) for s in splits(only_train)] == [70, 15, 15]
    assert all(sorted(np.bincount(s[1])) in ([17, 17, 18, 18], [3, 4, 4, 4]) for s in splits(only_train))
    again = load(str(tmp_path / "train.npz"), seed=3)
    np.testing.assert_array_equal(only_train.test[0], again.test[0])

    no_val = load(
        save(tmp_path / "noval.npz", x_train=x[:80], y_train=y[:80], x_test=x[80:], y_test=y[80:]), validation=0.25
    )
    assert [len(s[0]) for s in splits(no_val)] == [60, 20, 20]
    np.testing.assert_array_equal(no_val.test[0], x[80:].astype("float32"))


def test_input_dtypes(tmp_path):
    y = np.arange(30) % 3
    images = load(save(tmp_path / "u8.npz", x_train=np.full((30, 4, 4, 1), 255, np.uint8), y_train=y))
    assert images.train[0].dtype == np.float32 and images.train[0].max() == 1.0  # uint8 scaled to [0, 1]
    ids = load(save(tmp_path / "ids.npz", x_train=np.arange(300).reshape(30, 10), y_train=y))
    assert ids.train[0].dtype == np.int32 and spec_of(ids).input_dtype == "int32"
    flags = load(save(tmp_path / "b.npz", x_train=np.ones((30, 2), bool), y_train=y))
    assert flags.train[0].dtype == np.float32


@pytest.mark.parametrize(
    "y, task, classes",
    [
        (np.arange(60) % 3, "classification", ("0", "1", "2")),
        (np.array([5, 10, 20] * 20), "classification", ("5", "10", "20")),  # numbered in sorted order
        (np.array(["dog", "cat"] * 30), "classification", ("cat", "dog")),
        (np.arange(60) * 0.5, "regression", None),
        (np.arange(60), "regression", None),  # more than 20 distinct integers
    ],
)
def test_task_auto_and_labels(tmp_path, y, task, classes, capsys):
    dataset = load(save(tmp_path / "t.npz", x_train=rng.random((60, 2)), y_train=y))
    assert dataset.task == task and dataset.class_names == classes
    said = capsys.readouterr()
    assert f"npz: task=auto: {task}" in said.err and said.out == ""  # stdout is a command's result
    for _, labels in splits(dataset):
        if task == "classification":
            assert labels.dtype == np.int32 and set(np.unique(labels)) == set(range(len(classes)))
        else:
            assert labels.dtype == np.float32 and labels.shape[1:] == (1,)


def test_class_names_from_the_file_and_forced_tasks(tmp_path):
    path = save(
        tmp_path / "n.npz",
        x_train=rng.random((60, 2)),
        y_train=np.arange(60) % 25,
        class_names=np.array([f"c{i}" for i in range(25)]),
    )
    assert load(path).class_names == tuple(f"c{i}" for i in range(25))  # 25 classes: names say so
    path = save(tmp_path / "r.npz", x_train=rng.random((60, 2)), y_train=np.arange(60) % 3)
    assert load(path, task="regression").task == "regression"
    path = save(tmp_path / "c.npz", x_train=rng.random((60, 2)), y_train=np.arange(60) % 30)
    assert len(load(path, task="classification").class_names) == 30


def error(exc_type, path, **options):
    with pytest.raises(exc_type) as info:
        load(path, **options)
    message = str(info.value)
    assert "\n" not in message and message.startswith("dataset 'npz': ")
    return message


def test_errors_name_the_file_and_the_arrays(tmp_path):
    x, y = rng.random((20, 2)), np.arange(20) % 2
    assert "option path is not set" in error(UsageError, "")
    assert "no such file" in error(UsageError, str(tmp_path / "none.npz"))
    path = save(tmp_path / "keys.npz", x=x, y=y)
    assert error(UsageError, path) == (
        f"dataset 'npz': {path} has no array 'x_train'; it holds: x, y (expected x_train, y_train and "
        "optionally x_val, y_val, x_test, y_test, class_names)"
    )
    path = save(tmp_path / "half.npz", x_train=x, y_train=y, x_val=x)
    assert "has no array 'y_val'; it holds: x_train, y_train, x_val" in error(UsageError, path)
    path = save(tmp_path / "len.npz", x_train=x, y_train=y[:-1])
    assert f"{path}: x_train has 20 rows but y_train has 19" in error(KerastackError, path)
    path = save(tmp_path / "shape.npz", x_train=x, y_train=y, x_test=rng.random((5, 3)), y_test=y[:5])
    assert "x_test has samples of shape (3,) but x_train (2,)" in error(KerastackError, path)
    path = save(tmp_path / "obj.npz", x_train=np.array([{"a": 1}] * 20, dtype=object), y_train=y)
    assert f"{path}: array 'x_train' holds Python objects" in error(KerastackError, path)
    path = save(tmp_path / "one.npz", x_train=x, y_train=np.zeros(20, int))
    assert "the targets hold 1 class; classification needs at least 2" in error(UsageError, path)
    path = save(tmp_path / "names.npz", x_train=x, y_train=y + 5, class_names=np.array(["a", "b"]))
    assert "labels must be 0..1 for its 2 class_names; found 5..6" in error(KerastackError, path)
    npy = tmp_path / "a.npy"
    np.save(npy, x)
    assert f"{npy} is not a .npz file" in error(KerastackError, str(npy))
    assert "option task='guess': valid: auto, classification, regression" in error(UsageError, path, task="guess")
    path = save(tmp_path / "tiny.npz", x_train=x[:3], y_train=y[:3])
    assert "3 training samples are too few for validation=0.15, test=0.15" in error(UsageError, path)


def test_cli_lists_the_arrays_the_file_holds(tmp_path):
    path = save(tmp_path / "keys.npz", features=rng.random((20, 2)), labels=np.arange(20) % 2)
    proc = run_cli(
        "train", "--arch", "mlp", "--data", "npz", "--data-opt", f"path={path}", env={"KERAS_BACKEND": "jax"}
    )
    assert one_line_error(proc, 2) == (
        f"kerastack: error: dataset 'npz': {path} has no array 'x_train'; it holds: features, labels "
        "(expected x_train, y_train and optionally x_val, y_val, x_test, y_test, class_names)"
    )


@pytest.mark.slow
def test_cli_trains_an_mlp_on_an_npz_file(tmp_path):
    x = rng.normal(size=(120, 4)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int64")
    path = save(
        tmp_path / "d.npz",
        x_train=x[:100],
        y_train=y[:100],
        x_test=x[100:],
        y_test=y[100:],
        class_names=np.array(["low", "high"]),
    )
    out = tmp_path / "run"
    proc = run_cli(
        "train",
        "--arch",
        "mlp",
        "--data",
        "npz",
        "--data-opt",
        f"path={path}",
        "--epochs",
        "2",
        "--quiet",
        "--backend",
        "tensorflow",
        "--out",
        out,
        "--seed",
        "0",
        "--hp",
        "units=8",
    )
    assert proc.returncode == 0, proc.stderr
    spec = json.loads((out / "run.json").read_text())["spec"]
    assert spec["input_shape"] == [4] and spec["class_names"] == ["low", "high"]
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 2
