"""``sounds``: clip shapes and splits, determinism, the audio facts for the exporter, and classes told
by the sound's spectrum, not its loudness."""

import numpy as np
import pytest

from core import PluginHost, UsageError
from core.data import check_dataset, spec_of
from plugins.datasets import sounds


@pytest.fixture(scope="module")
def dataset():
    return sounds.load()


def test_registered_with_its_options_and_loads_through_the_host():
    host = PluginHost(["plugins.datasets.sounds"], builtins=(), entry_points=False, disabled=())
    entry = host.registry("dataset").get("sounds")
    assert entry.defaults == {
        "samples": 400,
        "duration": 0.5,
        "sample_rate": 16000,
        "noise": 0.02,
        "seed": 0,
        "validation": 0.15,
        "test": 0.15,
    }
    dataset = entry.call(**entry.options({"samples": "80", "duration": "0.25", "sample_rate": "8000"}))
    check_dataset(dataset, "sounds")
    spec = spec_of(dataset)
    assert spec.input_shape == (2000,) and spec.num_classes == 4
    assert spec.class_names == ("tone", "chirp", "noise", "clicks")
    assert dataset.audio == {"sample_rate": 8000, "samples": 2000}


def test_clips_are_waveforms_in_balanced_splits(dataset):
    parts = (dataset.train, dataset.validation, dataset.test)
    assert sum(len(x) for x, _ in parts) == 400
    for x, y in parts:
        assert x.shape[1:] == (8000,) and x.dtype == np.float32
        assert np.abs(x).max() <= 1 and y.dtype == np.int32
        counts = np.bincount(y, minlength=4)
        assert counts.max() - counts.min() <= 1
    assert dataset.audio == {"sample_rate": 16000, "samples": 8000}


def test_loudness_does_not_tell_the_class(dataset):
    x, y = dataset.train
    rms = np.sqrt((x.astype(np.float64) ** 2).mean(axis=1))
    means = [rms[y == c].mean() for c in range(4)]
    assert max(means) < 2.5 * min(means), means


def test_each_class_has_its_spectrum_and_envelope():
    x, y = sounds.load(samples=80, noise=0.0).train
    for clip, label in zip(x, y):
        spectrum = np.abs(np.fft.rfft(clip)) ** 2
        lines = np.sort(spectrum)[::-1][:40].sum() / spectrum.sum()  # energy in the 40 strongest bins
        level = np.abs(clip[clip != 0])
        crest = np.percentile(level, 99.5) / np.median(level)  # 1.5-2 for a sine, higher for peaky sounds
        expected = {
            "tone": lines > 0.9 and crest < 2.5,  # a sine and its harmonic: two lines
            "chirp": lines < 0.3 and crest < 2.5,  # a sine whose line moves
            "noise": lines < 0.8 and crest > 3,  # a band of noise
            "clicks": crest > 3,  # pulses: peaks far above the median
        }
        assert expected[sounds.CLASS_NAMES[label]], (sounds.CLASS_NAMES[label], lines, crest)


def test_same_seed_same_clips_other_seed_other_clips(dataset):
    again, other = sounds.load(), sounds.load(seed=1)
    np.testing.assert_array_equal(again.train[0], dataset.train[0])
    assert not np.array_equal(other.train[0], dataset.train[0])


@pytest.mark.parametrize(
    "options, message",
    [
        ({"sample_rate": 4000}, "option sample_rate=4000: expected an integer in [8000, 48000]"),
        ({"duration": 0.01}, "option duration=0.01: expected seconds in [0.1, 10]"),
        ({"noise": -1}, "option noise=-1"),
        ({"samples": 4}, "option samples=4"),
    ],
)
def test_bad_options_are_usage_errors_naming_them(options, message):
    with pytest.raises(UsageError, match="dataset 'sounds'") as caught:
        sounds.load(**options)
    assert message in str(caught.value)
