"""``audio_folder``: your own WAV clips, one subfolder per class, streamed from disk batch by batch."""

from core import hookimpl

OWNER = "dataset 'audio_folder'"


@hookimpl
def register_datasets(register):
    register(
        "audio_folder",
        load,
        summary="your own WAV clips in class subfolders (--data-opt path=DIR), resampled and cut to one length",
    )


def load(path="", sample_rate=16000, duration=1.0, batch_size=32, validation=0.15, test=0.15, seed=0):
    """Each split is a ``keras.utils.PyDataset`` of ``(waveforms, labels)`` batches of ``batch_size``:
    waveforms float32 in [-1, 1] with shape (duration * sample_rate,), labels int32.

    Class names are the subfolder names, sorted; a class's clips are the .wav files anywhere under
    its folder. A clip is read as mono (channels averaged; ``tflite/audio.py``, the reader a device
    uses too), resampled to ``sample_rate`` (scipy's ``resample_poly`` where scipy is installed,
    else numpy's FFT), then cut to its first ``duration`` seconds or zero-padded at the end. Every
    file's header is checked here, so that a file that is not 8/16/24/32-bit PCM WAV stops the run
    before training, naming it. ``dataset.audio`` records the sample rate and clip length for the
    exporter (the device runner's ``--input clip.wav`` prepares a clip the same way).
    """
    from functools import partial

    from core import Dataset, UsageError
    from plugins.datasets._checks import check_range
    from plugins.datasets._files import class_files, split_indices
    from tflite.audio import WAV_SUFFIXES

    check_range(OWNER, "sample_rate", sample_rate, 1000, 192000)
    check_range(OWNER, "duration", duration, 0.05, 60, what="seconds")
    if batch_size < 1:
        raise UsageError(f"{OWNER}: option batch_size={batch_size}: expected at least 1")
    files, labels, class_names = class_files(path, WAV_SUFFIXES, OWNER, "CLIP.wav", "clips")
    train, val, tst = split_indices(
        len(files), {"validation": validation, "test": test}, seed, OWNER, "clips", labels=labels
    )
    for file in files:
        check_wav(file)
    samples = int(round(duration * sample_rate))

    from plugins.datasets._streaming import FileBatches  # imports keras: only now, after the checks

    read = partial(read_clip, sample_rate=sample_rate, samples=samples)

    def split(rows, shuffle):
        if rows is None:  # a share of 0: no such split
            return None
        return FileBatches(
            [files[i] for i in rows], [labels[i] for i in rows], read, batch_size=batch_size, shuffle=shuffle, seed=seed
        )

    data = Dataset(
        train=split(train, True),
        validation=split(val, False),
        test=split(tst, False),
        task="classification",
        class_names=class_names,
    )
    data.audio = {"sample_rate": int(sample_rate), "samples": samples}
    return data


def check_wav(file):
    """Raise an error naming ``file`` unless its header is a PCM WAV's with samples of 8 to 32 bits."""
    from core import KerastackError
    from tflite.audio import wav_info

    try:
        rate, channels, width, frames = wav_info(file)
    except ValueError as exc:
        raise KerastackError(f"{OWNER}: {exc}") from None
    except OSError as exc:
        raise KerastackError(f"{OWNER}: cannot read {file}: {exc.strerror or exc}") from None
    if width not in (1, 2, 3, 4):
        raise KerastackError(f"{OWNER}: {file}: {8 * width}-bit samples; expected 8-, 16-, 24- or 32-bit PCM")
    if frames == 0:
        raise KerastackError(f"{OWNER}: {file}: the WAV file holds no samples")
    return rate, channels


def read_clip(file, sample_rate, samples):
    """One clip as float32 (samples,): read (mono), resampled to ``sample_rate``, cut or padded."""
    from core import KerastackError
    from tflite.audio import fit_length, read_wav

    try:
        x, rate = read_wav(file)
    except (OSError, ValueError) as exc:
        raise KerastackError(f"{OWNER}: cannot read {file}: {exc}") from None
    return fit_length(resample(x, rate, sample_rate), samples)


def resample(x, rate, target):
    """``x`` at ``rate`` Hz brought to ``target`` Hz: scipy's polyphase filter where scipy is installed
    (it comes with scikit-learn), else the FFT resampling of ``tflite.audio`` (what a device uses)."""
    import math

    import numpy as np

    if rate == target:
        return x
    try:
        from scipy.signal import resample_poly
    except ImportError:
        from tflite.audio import resample as fft_resample

        return fft_resample(x, rate, target)
    g = math.gcd(int(rate), int(target))
    return resample_poly(x, target // g, rate // g).astype(np.float32)
