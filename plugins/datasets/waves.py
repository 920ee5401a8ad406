"""``waves``: synthetic noisy time series of four waveform families, generated with numpy."""

from core import hookimpl

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
    from sklearn.model_selection import train_test_split

    from core import Dataset

    if not (0 < validation < 1 and 0 < test < 1 and validation + test < 1):
        raise ValueError(f"validation and test must be fractions summing below 1, got {validation}, {test}")
    if not 16 <= length <= 65536:
        raise ValueError(f"length must be an integer in [16, 65536], got {length}")
    if not 0 <= noise <= 10:
        raise ValueError(f"noise must be in [0, 10], got {noise}")
    smallest = min(validation, test, 1 - validation - test)
    if samples * smallest < len(CLASS_NAMES):
        need = int(np.ceil(len(CLASS_NAMES) / smallest))
        raise ValueError(f"samples must be at least {need} to hold every class in every split, got {samples}")
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(samples) % len(CLASS_NAMES)).astype("int32")
    cycles = rng.uniform(*CYCLES, (samples, 1))
    phase = rng.uniform(0, 1, (samples, 1))
    amplitude = rng.uniform(*AMPLITUDE, (samples, 1))
    t = (phase + cycles * np.arange(length) / length) % 1  # position within the period, in [0, 1)
    families = np.stack([
        np.sin(2 * np.pi * t),
        np.where(t < 0.5, 1.0, -1.0),
        2 * t - 1,
        1 - 4 * np.abs(t - 0.5),
    ])
    x = amplitude * families[y, np.arange(samples)] + rng.normal(0, noise, (samples, length))
    x = x.astype("float32")[..., None]
    x_rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=test, stratify=y, random_state=seed)
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=validation / (1 - test), stratify=y_rest, random_state=seed)
    return Dataset(train=(x_train, y_train), validation=(x_val, y_val), test=(x_test, y_test),
                   task="classification", class_names=CLASS_NAMES)
