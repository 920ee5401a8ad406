"""``iris``, ``wine``, ``breast_cancer``, ``diabetes``: splits, training-only standardization, targets."""

import numpy as np
import pytest

from core import PluginHost, UsageError
from core.data import check_dataset, spec_of
from plugins.datasets import tabular

# name → (rows, features, classes or None for regression)
SIZES = {"iris": (150, 4, 3), "wine": (178, 13, 3), "breast_cancer": (569, 30, 2), "diabetes": (442, 10, None)}


@pytest.fixture(scope="module")
def registry():
    host = PluginHost(["plugins.datasets.tabular"], builtins=(), entry_points=False, disabled=())
    assert not host.broken, [p.error for p in host.broken]
    return host.registry("dataset")


def splits(dataset):
    return dataset.train, dataset.validation, dataset.test


def test_one_loader_registers_every_table(registry):
    assert registry.names() == sorted(SIZES)
    for name in SIZES:
        entry = registry.get(name)
        assert entry.defaults == {"validation": 0.15, "test": 0.15, "seed": 0}
        assert entry.summary


@pytest.mark.parametrize("name", sorted(SIZES))
def test_splits_cover_the_table_with_the_right_types(registry, name):
    rows, features, classes = SIZES[name]
    entry = registry.get(name)
    dataset = entry.call(**entry.options({"seed": "3"}))
    check_dataset(dataset, name)
    spec = spec_of(dataset)
    assert spec.input_shape == (features,) and spec.input_dtype == "float32"
    sizes = [len(x) for x, _ in splits(dataset)]
    assert sum(sizes) == rows
    assert abs(sizes[2] - 0.15 * rows) <= 1 and abs(sizes[1] - 0.15 * rows) <= 2
    for x, y in splits(dataset):
        assert x.dtype == np.float32 and x.shape[1:] == (features,) and np.all(np.isfinite(x))
        if classes:
            assert y.dtype == np.int32 and y.shape == (len(x),)
        else:
            assert y.dtype == np.float32 and y.shape == (len(x), 1)
    if classes:
        assert dataset.task == "classification" and spec.num_classes == classes
        assert all(isinstance(n, str) for n in dataset.class_names)
    else:
        assert dataset.task == "regression" and dataset.class_names is None


def test_class_names_come_from_the_table():
    assert tabular.load("iris").class_names == ("setosa", "versicolor", "virginica")
    assert tabular.load("breast_cancer").class_names == ("malignant", "benign")


@pytest.mark.parametrize("name", ["wine", "diabetes"])
def test_features_are_standardized_with_training_statistics_only(name):
    dataset = tabular.load(name)
    x_train = dataset.train[0]
    np.testing.assert_allclose(x_train.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(x_train.std(axis=0), 1, atol=1e-4)
    for x, _ in (dataset.validation, dataset.test):
        # Statistics of the other splits would have centred these exactly too.
        assert np.abs(x.mean(axis=0)).max() > 0.05
        assert np.abs(x.std(axis=0) - 1).max() > 0.05


def test_diabetes_targets_keep_their_units():
    from sklearn.datasets import load_diabetes

    dataset = tabular.load("diabetes")
    y = np.concatenate([y for _, y in splits(dataset)])[:, 0]
    np.testing.assert_allclose(np.sort(y), np.sort(load_diabetes().target), rtol=1e-6)


@pytest.mark.parametrize("name", ["iris", "breast_cancer"])
def test_classification_splits_are_stratified(name):
    dataset = tabular.load(name)
    shares = [np.bincount(y) / len(y) for _, y in splits(dataset)]
    for share in shares[1:]:
        assert np.abs(share - shares[0]).max() < 0.05


def test_same_seed_same_split_other_seed_other_split():
    a, b, c = tabular.load("wine", seed=1), tabular.load("wine", seed=1), tabular.load("wine", seed=2)
    for (xa, ya), (xb, yb) in zip(splits(a), splits(b)):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(a.test[0], c.test[0])


@pytest.mark.parametrize("options", [{"validation": -0.1}, {"test": 1.0}, {"validation": 0.5, "test": 0.5}])
def test_bad_split_fractions_name_the_options(options):
    with pytest.raises(
        UsageError, match=r"dataset 'iris': options validation and test must be fractions in \[0, 1\) summing below 1"
    ):
        tabular.load("iris", **options)
