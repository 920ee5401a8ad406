"""core.data, the contract between dataset plugins and the core: what a malformed dataset is told,
the DataSpec an architecture gets, and how splits are read (numpy pairs, or any object with
``__len__`` and ``__getitem__`` returning batches, as a ``keras.utils.PyDataset`` does). No keras."""

import dataclasses
import re

import numpy as np
import pytest

from core.data import Dataset, DataSpec, as_arrays, batches, check_dataset, first_batch, is_pair, spec_of, targets_for
from core.engine.datasets import loader_options, predict_batches, recorded_data_options, task_for
from core.errors import KerastackError, UsageError

OWNER = "dataset 'toy' from plugin 'toy' (built-in)"


def pair(n=10, features=3, classes=3, dtype="float32"):
    x = np.arange(n * features, dtype=dtype).reshape(n, features)
    return x, np.arange(n) % classes


class Batches:
    """A PyDataset stand-in: ``len`` batches of ``size`` samples, read on demand (counted)."""

    def __init__(self, n=10, size=4, labels=True, shape=(2, 2)):
        self.x = np.arange(n * int(np.prod(shape)), dtype="float32").reshape(n, *shape)
        self.y = np.arange(n) % 2 if labels else None
        self.size = size
        self.reads = []

    def __len__(self):
        return -(-len(self.x) // self.size)

    def __getitem__(self, i):
        self.reads.append(i)
        part = slice(i * self.size, (i + 1) * self.size)
        return (self.x[part], self.y[part]) if self.y is not None else (self.x[part],)


def check(**splits):
    check_dataset(Dataset(**splits), OWNER)


# -- check_dataset ----------------------------------------------------------------------------------
def test_a_good_dataset_passes():
    check(train=pair(), validation=pair(4), test=pair(5))
    check(train=(pair()[0], None), task="generation")  # no targets
    check(train=(np.zeros((3, 2), dtype=bool), np.array([0, 1, 0])))  # bool inputs are numbers
    check(train=Batches())  # a PyDataset is not read here


def test_not_a_dataset():
    with pytest.raises(KerastackError, match=rf"^{re.escape(OWNER)} returned tuple, expected core.Dataset$"):
        check_dataset(pair(), OWNER)


def test_unknown_task():
    """A task no plugin registers: the dataset plugin named, the registered tasks listed."""
    with pytest.raises(
        KerastackError, match=r"^dataset .*: unknown task 'ranking'; valid: classification, .*regression"
    ):
        check(train=pair(), task="ranking")


def test_missing_or_empty_split():
    with pytest.raises(KerastackError, match=r": the train split is empty$"):
        check(train=None, test=pair())
    with pytest.raises(KerastackError, match=r": the validation split is empty$"):
        check(train=pair(), validation=(np.zeros((0, 3)), np.zeros(0, dtype=int)))


def test_inputs_and_targets_of_different_lengths():
    x, y = pair(10)
    with pytest.raises(KerastackError, match=rf"^{re.escape(OWNER)}: test split has 10 inputs but 9 targets$"):
        check(train=pair(), test=(x, y[:9]))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_inputs(bad):
    x, y = pair()
    x[3, 1] = bad
    with pytest.raises(KerastackError, match=r": train split inputs contain NaN or inf$"):
        check(train=(x, y))


def test_non_numeric_dtypes():
    x, y = pair()
    with pytest.raises(KerastackError, match=r"train split inputs have dtype <U1; expected numbers"):
        check(train=(np.array([["a"]] * 10), y))
    with pytest.raises(KerastackError, match=r"validation split targets have dtype object; expected numbers"):
        check(train=pair(), validation=(x, np.array([{}] * 10, dtype=object)))


# -- spec_of and labels -------------------------------------------------------------------------------
def test_spec_from_the_splits():
    x, y = pair(12, features=5, classes=4)
    spec = spec_of(Dataset(train=(x, y), test=pair(3, features=5, classes=3)))
    assert spec == DataSpec(input_shape=(5,), num_classes=4, task="classification", class_names=None)
    assert spec.input_dtype == "float32" and spec.vocab_size is None
    assert all(type(d) is int for d in spec.input_shape)


def test_classes_count_from_every_split():
    train = (pair()[0], np.zeros(10, dtype=int))
    test = (pair(2)[0], np.array([0, 6]))
    assert spec_of(Dataset(train=train, test=test)).num_classes == 7


def test_class_names_set_the_count():
    spec = spec_of(Dataset(train=pair(classes=2), class_names=["cat", "dog", "bird"]))
    assert (spec.num_classes, spec.class_names) == (3, ("cat", "dog", "bird"))


def test_token_inputs_keep_their_dtype_and_vocabulary():
    tokens = np.ones((6, 20), dtype="int32")
    spec = spec_of(Dataset(train=(tokens, np.arange(6) % 2), vocab_size=1000))
    assert (spec.input_shape, spec.input_dtype, spec.vocab_size, spec.num_classes) == ((20,), "int32", 1000, 2)


def test_regression_has_no_classes():
    x, _ = pair()
    spec = spec_of(Dataset(train=(x, np.linspace(0, 1, 10)), task="regression"))
    assert (spec.task, spec.num_classes, spec.class_names) == ("regression", None, None)
    assert spec.target_shape == ()  # one value per sample


def test_forecasting_spec_knows_the_horizon_and_the_dataset_its_facts():
    x = np.zeros((10, 16, 2), dtype="float32")
    dataset = Dataset(train=(x, np.zeros((10, 4), dtype="float32")), task="forecasting", info={"season": 7})
    check_dataset(dataset, "series")
    spec = spec_of(dataset)
    assert (spec.task, spec.input_shape, spec.target_shape, spec.num_classes) == ("forecasting", (16, 2), (4,), None)
    assert dataset.info == {"season": 7} and Dataset(train=(x, None)).info == {}
    assert spec_of(Dataset(train=(x, np.arange(10) % 2))).target_shape is None  # classes, not values


def test_spec_of_batches_reads_one_batch():
    data = Batches(n=10, size=4, shape=(2, 2))
    spec = spec_of(Dataset(train=data))
    assert (spec.input_shape, spec.num_classes) == ((2, 2), 2)
    assert data.reads == [0]


def test_labels_outside_the_class_names():
    with pytest.raises(
        KerastackError, match=rf"^{re.escape(OWNER)}: train labels must lie in \[0, 1\] \(2 classes\); found 0..2$"
    ):
        spec_of(Dataset(train=pair(classes=3), class_names=("a", "b")), OWNER)


def test_negative_labels():
    x, _ = pair(3)
    with pytest.raises(KerastackError, match=r"^test labels must lie in \[0, 1\] \(2 classes\); found -1..0$"):
        spec_of(Dataset(train=(x, np.array([0, 1, 1])), test=(x, np.array([-1, 0, 0]))))


def test_float_labels_for_classification():
    x, _ = pair(3)
    with pytest.raises(KerastackError, match=r"train labels have dtype float64; classification needs integer labels"):
        spec_of(Dataset(train=(x, np.array([0.0, 1.0, 1.0]))), OWNER)


def test_segmentation_masks_count_classes_and_are_range_checked():
    x = np.zeros((4, 3, 3, 1), "float32")
    masks = np.zeros((4, 3, 3), "int32")
    masks[0, 1, 1], masks[1, 0, 2] = 2, 1
    spec = spec_of(Dataset(train=(x, masks), task="segmentation"))
    assert (spec.task, spec.num_classes, spec.input_shape) == ("segmentation", 3, (3, 3, 1))
    named = spec_of(Dataset(train=(x, masks), task="segmentation", class_names=("bg", "a", "b", "c")))
    assert named.num_classes == 4 and named.class_names == ("bg", "a", "b", "c")
    with pytest.raises(
        KerastackError, match=r"^dataset 'x': train labels must lie in \[0, 1\] \(2 classes\); found 0..2$"
    ):
        spec_of(Dataset(train=(x, masks), task="segmentation", class_names=("bg", "a")), "dataset 'x'")
    with pytest.raises(KerastackError, match=r"train labels have dtype float32; segmentation needs integer labels"):
        spec_of(Dataset(train=(x, masks.astype("float32")), task="segmentation"))


def test_dataspec_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        DataSpec((3,)).num_classes = 4


# -- tasks and targets -------------------------------------------------------------------------------
def test_task_for():
    spec = DataSpec((3,), task="regression")
    assert task_for(spec, ("classification", "regression"), "mlp", "tab") == "regression"
    assert task_for(spec, ("reconstruction",), "autoencoder", "tab") == "reconstruction"
    assert task_for(spec, ("classification", "generation"), "gan", "tab") == "generation"
    with pytest.raises(UsageError, match=r"^architecture 'cnn' supports classification; dataset 'tab' is regression$"):
        task_for(spec, ("classification",), "cnn", "tab")


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_supervised_targets_are_the_labels(task):
    x, y = pair()
    got = targets_for(task, (x, y))
    assert got[0] is x and got[1] is y


def test_reconstruction_targets_are_the_inputs_and_generation_has_none():
    x, y = pair()
    assert targets_for("reconstruction", (x, y))[1] is x
    assert targets_for("generation", (x, y)) == (x, None)
    data = Batches()
    assert targets_for("reconstruction", data) is data  # a PyDataset is passed on as it is


# -- reading splits -----------------------------------------------------------------------------------
def test_is_pair():
    x, y = pair()
    assert is_pair((x, y)) and is_pair([x, None])
    assert not is_pair(x) and not is_pair((x,)) and not is_pair((x, y, y)) and not is_pair(Batches())
    assert not is_pair(np.zeros((2, 3)))  # an array of two rows is not a pair


def test_as_arrays_of_a_pair():
    x, y = pair(10)
    got = as_arrays((x, y))
    assert got[0] is x and got[1] is y
    lx, ly = as_arrays((x, y), limit=4)
    np.testing.assert_array_equal(lx, x[:4])
    np.testing.assert_array_equal(ly, y[:4])
    assert as_arrays((x, None), limit=3)[1] is None


def test_as_arrays_of_batches_stops_at_the_limit():
    data = Batches(n=10, size=4)
    x, y = as_arrays(data, limit=5)
    assert x.shape == (5, 2, 2) and y.tolist() == [0, 1, 0, 1, 0]
    assert data.reads == [0, 1]  # the third batch is never read
    full = Batches(n=10, size=4)
    x, y = as_arrays(full)
    np.testing.assert_array_equal(x, full.x)
    assert full.reads == [0, 1, 2]


def test_as_arrays_of_batches_without_labels_or_samples():
    x, y = as_arrays(Batches(n=6, size=4, labels=False))
    assert x.shape == (6, 2, 2) and y is None
    empty = Batches(n=0)
    x, y = as_arrays(empty)
    assert x.shape == (0,) and y is None


def test_batches_of_a_pair():
    x, y = pair(10)
    got = list(batches((x, y), size=4))
    assert [len(b[0]) for b in got] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([b[1] for b in got]), y)
    assert [b[1] for b in batches((x, None), size=6)] == [None, None]
    assert len(list(batches((x, y)))) == 1  # 256 at a time by default


def test_batches_of_a_batch_object():
    data = Batches(n=10, size=4)
    got = list(batches(data, size=999))  # its own batch size wins
    assert [b[0].shape for b in got] == [(4, 2, 2), (4, 2, 2), (2, 2, 2)]
    assert all(isinstance(b[0], np.ndarray) for b in got)
    assert [b[1] for b in batches(Batches(n=3, labels=False))] == [None]


def test_first_batch():
    x, y = pair()
    assert first_batch((x, y)) == (x, y)
    data = Batches(n=10, size=4)
    bx, by = first_batch(data)
    assert bx.shape == (4, 2, 2) and by.tolist() == [0, 1, 0, 1] and data.reads == [0]


def test_evaluation_split_prefers_test_then_validation():
    a, b, c = pair(3), pair(4), pair(5)
    assert Dataset(train=a, validation=b, test=c).evaluation_split() == ("test", c)
    assert Dataset(train=a, validation=b).evaluation_split() == ("validation", b)
    assert Dataset(train=a).evaluation_split() == ("train", a)
    with pytest.raises(KerastackError, match="^the dataset has no splits$"):
        Dataset(train=None).evaluation_split()


class _ShapeRecorder:
    """A model stand-in: ``predict_on_batch`` sums each sample's features and keeps the shapes."""

    def __init__(self):
        self.shapes = []

    def predict_on_batch(self, x):
        self.shapes.append(x.shape)
        return x.reshape(len(x), -1).sum(1, keepdims=True)


def test_predict_batches_calls_the_model_with_one_shape():
    # A last partial batch (or a streamed split's) padded to the first batch's shape: a compiled
    # predict function is traced once, not again for 14 rows (TensorFlow's retracing warning).
    x = np.arange(270 * 3, dtype="float32").reshape(270, 3)
    y = np.arange(270)
    model = _ShapeRecorder()
    got = list(predict_batches(model, batches((x, y), 256)))
    assert model.shapes == [(256, 3), (256, 3)]
    assert [len(out) for _, _, out in got] == [256, 14]
    np.testing.assert_array_equal(np.concatenate([out for _, _, out in got])[:, 0], x.sum(1))
    np.testing.assert_array_equal(np.concatenate([b for _, b, _ in got]), y)


def test_a_streamed_dataset_takes_training_batch_size():
    streams, arrays = {"path": "", "batch_size": 32}, {"path": ""}
    # One batch size: training's reaches a loader that takes batch_size; run.json records it once.
    assert loader_options(streams, {"path": "d"}, 16) == {"path": "d", "batch_size": 16}
    assert loader_options(arrays, {"path": "d"}, 16) == {"path": "d"}
    assert loader_options(streams, {"batch_size": 8}, 16) == {"batch_size": 8}  # recorded before: kept
    assert recorded_data_options(streams, {"path": "d", "batch_size": 16}, 16, "dataset 'x'") == {"path": "d"}
    assert recorded_data_options(arrays, {"path": "d"}, 16, "dataset 'x'") == {"path": "d"}
    with pytest.raises(UsageError, match=r"batch_size=8 disagrees with --batch-size 16: .*--batch-size 8 instead"):
        recorded_data_options(streams, {"batch_size": 8}, 16, "dataset 'x'")
