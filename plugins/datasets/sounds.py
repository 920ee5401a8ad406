"""``sounds``: synthetic audio clips (tones, chirps, noise bursts, clicks) at 16 kHz, made with numpy."""

from core import hookimpl

OWNER = "dataset 'sounds'"

CLASS_NAMES = ("tone", "chirp", "noise", "clicks")
FREQUENCY = (300.0, 3000.0)  # Hz: a tone's pitch, a chirp's ends, a burst's band centre
EVENT = (0.4, 0.9)  # the event's share of the clip
LEVEL = (0.05, 0.2)  # the event's RMS amplitude (peaks clipped to [-1, 1])


@hookimpl
def register_datasets(register):
    register(
        "sounds",
        load,
        summary="synthetic 16 kHz clips (tone, chirp, noise burst, clicks) over background noise, 4 classes",
    )


def load(samples=400, duration=0.5, sample_rate=16000, noise=0.02, seed=0, validation=0.15, test=0.15):
    """Clips as float32 waveforms in [-1, 1] with shape (duration * sample_rate,); a stratified split
    fixed by ``seed``. ``dataset.audio`` records the sample rate and clip length for the exporter.

    Each clip holds one event over Gaussian background noise of standard deviation ``noise``: a
    tone (a sine with a random pitch and a weaker second harmonic), a chirp (a sweep up or down
    between two random frequencies), a noise burst (white noise through a random band) or clicks
    (short decaying pulses at a random rate). Every event has a random loudness (RMS), onset and length
    and fades in and out, so neither loudness nor timing tells the class: only the sound's shape.
    """
    import numpy as np

    from plugins.datasets._checks import check_fractions, check_range, check_samples
    from plugins.datasets._split import classification_dataset

    check_fractions(OWNER, validation=validation, test=test)
    check_range(OWNER, "sample_rate", sample_rate, 8000, 48000)
    check_range(OWNER, "duration", duration, 0.1, 10, what="seconds")
    check_range(OWNER, "noise", noise, 0, 1, what="a number")
    check_samples(OWNER, samples, len(CLASS_NAMES), validation, test)
    rng = np.random.default_rng(seed)
    length = int(round(duration * sample_rate))
    y = rng.permutation(np.arange(samples) % len(CLASS_NAMES)).astype("int32")
    x = np.stack([clip(CLASS_NAMES[label], length, sample_rate, rng) for label in y])
    x = np.clip(x + rng.normal(0, noise, x.shape), -1, 1).astype("float32")
    data = classification_dataset(x, y, CLASS_NAMES, validation, test, seed)
    data.audio = {"sample_rate": int(sample_rate), "samples": length}
    return data


def clip(kind, length, rate, rng):
    """One event of ``kind`` (a class name) in a silent clip of ``length`` samples at ``rate`` Hz."""
    import numpy as np

    n = int(length * rng.uniform(*EVENT))
    start = rng.integers(0, length - n + 1)
    t = np.arange(n) / rate
    low, high = FREQUENCY[0], min(FREQUENCY[1], 0.4 * rate)
    if kind == "tone":
        f = rng.uniform(low, high)
        event = np.sin(2 * np.pi * f * t) + 0.3 * np.sin(4 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
    elif kind == "chirp":
        f0, f1 = rng.uniform(low, high, 2)
        while abs(f1 - f0) < 0.3 * (high - low):  # a sweep you can hear, up or down
            f0, f1 = rng.uniform(low, high, 2)
        event = np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * t[-1])))
    elif kind == "noise":
        centre, width = rng.uniform(low, high), rng.uniform(0.3, 1.0)
        spectrum = np.fft.rfft(rng.normal(size=n))
        f = np.fft.rfftfreq(n, 1 / rate)
        spectrum[np.abs(np.log2(np.maximum(f, 1) / centre)) > width] = 0  # a band `width` octaves each side
        event = np.fft.irfft(spectrum, n)
    else:  # clicks: decaying 4 ms pulses, 20 to 60 a second
        event = np.zeros(n)
        pulse = np.exp(-np.arange(int(0.004 * rate)) / (0.001 * rate)) * rng.choice([-1, 1])
        for at in np.arange(rng.uniform(0, 0.02), t[-1], 1 / rng.uniform(20, 60)):
            i = int(at * rate)
            event[i : i + len(pulse)] += pulse[: n - i]
    event = event / (np.sqrt(np.mean(event**2)) or 1) * rng.uniform(*LEVEL)
    fade = min(n // 4, int(0.01 * rate))
    ramp = np.ones(n)
    ramp[:fade], ramp[n - fade :] = np.linspace(0, 1, fade), np.linspace(1, 0, fade)
    out = np.zeros(length)
    out[start : start + n] = event * ramp
    return out
