"""``tokens``: int32 sequences whose label only the order of two markers tells."""

import numpy as np
import pytest

from core import PluginHost, UsageError
from core.data import check_dataset, spec_of
from plugins.datasets import tokens
from plugins.datasets.tokens import MARKER_A, MARKER_B


@pytest.fixture(scope="module")
def dataset():
    return tokens.load()


def splits(dataset):
    return dataset.train, dataset.validation, dataset.test


def test_registered_with_its_options_and_the_spec_carries_the_vocabulary():
    host = PluginHost(["plugins.datasets.tokens"], builtins=(), entry_points=False, disabled=())
    entry = host.registry("dataset").get("tokens")
    assert entry.defaults == {"samples": 2000, "length": 24, "vocab": 50, "seed": 0, "validation": 0.15, "test": 0.15}
    dataset = entry.call(**entry.options({"samples": "300", "length": "10", "vocab": "20"}))
    check_dataset(dataset, "tokens")
    spec = spec_of(dataset)
    assert spec.input_shape == (10,) and spec.input_dtype == "int32"
    assert spec.vocab_size == 20 and spec.num_classes == 2
    assert spec.class_names == ("B-first", "A-first")


def test_splits_have_the_right_shapes_types_and_sizes(dataset):
    sizes = [len(x) for x, _ in splits(dataset)]
    assert sum(sizes) == 2000 and sizes[1] == sizes[2] == 300
    for x, y in splits(dataset):
        assert x.shape[1:] == (24,) and x.dtype == np.int32
        assert x.min() >= 1 and x.max() <= 49  # 0 is padding; ids stay below vocab
        assert y.dtype == np.int32 and np.bincount(y).tolist() == [len(y) // 2] * 2


def test_every_sequence_holds_each_marker_once_and_the_label_is_their_order(dataset):
    for x, y in splits(dataset):
        assert np.all((x == MARKER_A).sum(axis=1) == 1) and np.all((x == MARKER_B).sum(axis=1) == 1)
        a_first = (x == MARKER_A).argmax(axis=1) < (x == MARKER_B).argmax(axis=1)
        np.testing.assert_array_equal(y, a_first.astype("int32"))
    # Fillers use the whole rest of the vocabulary.
    assert set(np.unique(dataset.train[0])) == set(range(1, 50))


def test_same_seed_same_sequences_other_seed_other_sequences(dataset):
    again, other = tokens.load(), tokens.load(seed=1)
    np.testing.assert_array_equal(dataset.train[0], again.train[0])
    np.testing.assert_array_equal(dataset.test[1], again.test[1])
    assert not np.array_equal(dataset.train[0], other.train[0])


def test_order_tells_the_label_and_token_counts_do_not(dataset):
    from sklearn.linear_model import LogisticRegression

    (x, y), (x_test, y_test) = dataset.train, dataset.test

    def counts(sequences):  # bag of words
        return np.stack([np.bincount(s, minlength=50) for s in sequences])

    def order(sequences):
        return ((sequences == MARKER_A).argmax(axis=1) < (sequences == MARKER_B).argmax(axis=1))[:, None]

    by_counts = LogisticRegression(max_iter=2000).fit(counts(x), y).score(counts(x_test), y_test)
    by_order = LogisticRegression().fit(order(x), y).score(order(x_test), y_test)
    assert by_counts <= 0.6, by_counts
    assert by_order == 1.0


@pytest.mark.parametrize(
    "options, match",
    [
        ({"vocab": 3}, "dataset 'tokens': option vocab=3: expected an integer in \\[4, 2147483647\\]"),
        ({"length": 1}, "option length=1: expected an integer in \\[2, 4096\\]"),
        ({"samples": 5}, "option samples=5: expected an integer at least 14 "),
        ({"test": -0.1}, r"options validation and test must be fractions in \[0, 1\) summing below 1"),
    ],
)
def test_bad_options_raise_naming_the_option(options, match):
    with pytest.raises(UsageError, match=match):
        tokens.load(**options)
