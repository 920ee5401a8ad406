"""``waves``: series splits, determinism, and a family told by the wave's shape, not its phase."""

import numpy as np
import pytest

from core import PluginHost, UsageError
from core.data import check_dataset, spec_of
from plugins.datasets import waves


@pytest.fixture(scope="module")
def dataset():
    return waves.load()


def splits(dataset):
    return dataset.train, dataset.validation, dataset.test


def test_registered_with_its_options_and_loads_through_the_host():
    host = PluginHost(["plugins.datasets.waves"], builtins=(), entry_points=False, disabled=())
    entry = host.registry("dataset").get("waves")
    assert entry.defaults == {"samples": 1200, "length": 64, "noise": 0.2, "seed": 0, "validation": 0.15, "test": 0.15}
    dataset = entry.call(**entry.options({"samples": "200", "length": "32"}))
    check_dataset(dataset, "waves")
    spec = spec_of(dataset)
    assert spec.input_shape == (32, 1) and spec.num_classes == 4
    assert spec.class_names == ("sine", "square", "sawtooth", "triangle")


def test_splits_have_the_right_shapes_types_and_sizes(dataset):
    sizes = [len(x) for x, _ in splits(dataset)]
    assert sum(sizes) == 1200 and abs(sizes[1] - 180) <= 1 and abs(sizes[2] - 180) <= 1
    for x, y in splits(dataset):
        assert x.shape[1:] == (64, 1) and x.dtype == np.float32 and np.all(np.isfinite(x))
        assert y.dtype == np.int32 and set(np.unique(y)) == {0, 1, 2, 3}
        counts = np.bincount(y)
        assert counts.max() - counts.min() <= 1


def test_without_noise_each_family_has_its_shape():
    x, y = waves.load(samples=400, noise=0.0).train
    x = x[..., 0] / np.abs(x[..., 0]).max(axis=1, keepdims=True)  # amplitude 1
    square, sawtooth = x[y == 1], x[y == 2]
    np.testing.assert_allclose(np.abs(square), 1, atol=1e-6)
    # A sawtooth rises in small steps and falls in one jump per period.
    steps = np.diff(sawtooth, axis=1)
    assert np.all((steps > 0) | (steps < -1))
    for family in range(4):
        assert np.abs(x[y == family].mean(axis=1)).mean() < 0.25  # no offset tells a family apart


def test_noise_option_sets_the_noise():
    clean = waves.load(samples=200, noise=0.0).train[0]
    noisy = waves.load(samples=200, noise=0.5).train[0]
    assert np.std(noisy - clean) == pytest.approx(0.5, rel=0.05)


def test_same_seed_same_series_other_seed_other_series(dataset):
    again, other = waves.load(), waves.load(seed=1)
    np.testing.assert_array_equal(dataset.train[0], again.train[0])
    np.testing.assert_array_equal(dataset.test[1], again.test[1])
    assert not np.array_equal(dataset.train[0], other.train[0])


def test_learnable_from_the_waves_shape_but_not_from_raw_values(dataset):
    from sklearn.linear_model import LogisticRegression

    (x, y), (x_test, y_test) = dataset.train, dataset.test

    def shape_features(series):
        """What stays when phase and amplitude are removed: spectrum, value and slope distributions."""
        s = series[..., 0]
        s = (s - s.mean(axis=1, keepdims=True)) / s.std(axis=1, keepdims=True)
        spectrum = np.abs(np.fft.rfft(s * np.hanning(s.shape[1]), axis=1))
        spectrum /= spectrum.max(axis=1, keepdims=True)
        return np.concatenate([spectrum, np.sort(s, axis=1), np.sort(np.diff(s, axis=1), axis=1)], axis=1)

    by_values = LogisticRegression(max_iter=1000).fit(x[..., 0], y).score(x_test[..., 0], y_test)
    by_shape = LogisticRegression(max_iter=3000).fit(shape_features(x), y).score(shape_features(x_test), y_test)
    assert by_values < 0.4, by_values
    assert by_shape >= 0.9, by_shape


@pytest.mark.parametrize(
    "options, match",
    [
        ({"length": 8}, "dataset 'waves': option length=8: expected an integer in \\[16, 65536\\]"),
        ({"noise": -1.0}, "option noise=-1.0: expected a number in \\[0, 10\\]"),
        ({"samples": 12}, "option samples=12: expected an integer at least 27 "),
        ({"validation": 1.5}, r"validation and test must be fractions in \[0, 1\) summing below 1"),
    ],
)
def test_bad_options_raise_naming_the_option(options, match):
    with pytest.raises(UsageError, match=match):
        waves.load(**options)
