"""What model.json says of a run's inputs (issue 14): the training inputs' range, and the scaling a
dataset applied where it is known. Stand-ins for the model; no TensorFlow."""

from types import SimpleNamespace

import numpy as np

from core import Dataset
from plugins.deployment.tflite.artifacts import input_normalization, input_range


def model(*shape):
    return SimpleNamespace(input_shape=(None, *shape))


def test_the_range_of_the_whole_training_split():
    x = np.linspace(-2.0, 3.5, 100 * 4, dtype="float32").reshape(100, 4)
    dataset = Dataset(train=(x, np.zeros(100)), test=(x[:1] * 100, np.zeros(1)))
    assert input_range(dataset, model(4)) == {"min": -2.0, "max": 3.5, "samples": 100}
    assert input_range(dataset, model(4)) is input_range(dataset, model(4))  # measured once per export


def test_no_range_for_a_model_that_takes_other_inputs():
    dataset = Dataset(train=(np.ones((10, 8, 8, 1), "float32"), np.zeros(10)))
    assert input_range(dataset, model(16)) is None  # a generator's latent vectors


def test_normalization_declared_by_the_dataset_or_known_for_built_in_ones():
    plain = Dataset(train=(np.ones((2, 1)), None))
    assert input_normalization(plain, "image_folder") == {"scale": 1 / 255, "offset": 0.0, "raw_range": [0, 255]}
    assert input_normalization(plain, "csv") is None  # not known: nothing recorded
    plain.normalization = {"scale": 0.5}
    assert input_normalization(plain, "image_folder") == {"offset": 0.0, "scale": 0.5}
