"""``waves``: synthetic noisy time series of four waveform families, generated with numpy."""

from core import hookimpl

OWNER = "dataset 'waves'"

CLASS_NAMES = ("sine", "square", "sawtooth", "triangle")
# Periods per series and amplitudes. Wider ranges bury what tells a triangle from a sine (at most a
# fifth of the amplitude) under the default noise: a small Conv1D then stops short of 0.9 accuracy.
CYCLES = (2.0, 5.0)
AMPLITUDE = (0.8, 1.2)


@hookimpl
def register_datasets(register):
    register("waves", load, summary="synthetic noisy sine/square/sawtooth/triangle series, 4 classes")


def load(samples=1200, length=64, noise=0.2, seed=0, validation=0.15, test=0.15):
    """Series as float32 with shape (length, 1); a stratified split fixed by ``seed``.

    Every series has a random frequency, phase and amplitude, plus Gaussian noise of standard
    deviation ``noise``: only the shape of the wave tells its family.
    """
    import numpy as np

    from plugins.datasets._checks import check_fractions, check_range, check_samples
    from plugins.datasets._split import classification_dataset

    check_fractions(OWNER, validation=validation, test=test)
    check_range(OWNER, "length", length, 16, 65536)
    check_range(OWNER, "noise", noise, 0, 10, what="a number")
    check_samples(OWNER, samples, len(CLASS_NAMES), validation, test)
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(samples) % len(CLASS_NAMES)).astype("int32")
    cycles = rng.uniform(*CYCLES, (samples, 1))
    phase = rng.uniform(0, 1, (samples, 1))
    amplitude = rng.uniform(*AMPLITUDE, (samples, 1))
    t = (phase + cycles * np.arange(length) / length) % 1  # position within the period, in [0, 1)
    families = np.stack(
        [
            np.sin(2 * np.pi * t),
            np.where(t < 0.5, 1.0, -1.0),
            2 * t - 1,
            1 - 4 * np.abs(t - 0.5),
        ]
    )
    x = amplitude * families[y, np.arange(samples)] + rng.normal(0, noise, (samples, length))
    x = x.astype("float32")[..., None]
    return classification_dataset(x, y, CLASS_NAMES, validation, test, seed)
