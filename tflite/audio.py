"""WAV files → the waveform an audio model takes: the standard library's ``wave`` and numpy only.

A clip is read as mono float32 in [-1, 1] (``read_wav``: 8-, 16-, 24- or 32-bit PCM, channels
averaged), brought to the model's sample rate (``resample``) and cut or zero-padded to its length
(``fit_length``). The training side reads its WAV files with this module too (``audio_folder``), so
a device reads a clip as training did; the model's metadata records ``audio``: its ``sample_rate``
and ``samples`` per clip (``audio_spec``).
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

__all__ = ["WAV_SUFFIXES", "audio_spec", "fit_length", "read_wav", "resample", "wav_info"]

WAV_SUFFIXES = (".wav", ".wave")
_PCM = {1: np.uint8, 2: np.int16, 4: np.int32}  # sample width in bytes → dtype (8-bit WAV is unsigned)


def wav_info(path: str | Path) -> tuple[int, int, int, int]:
    """``(sample_rate, channels, sample_width_bytes, frames)`` of a PCM WAV file, from its header.

    A file that is not a PCM WAV (compressed, float, damaged, empty) is a ValueError naming it.
    """
    try:
        with wave.open(str(path), "rb") as f:
            return f.getframerate(), f.getnchannels(), f.getsampwidth(), f.getnframes()
    except (wave.Error, EOFError) as exc:
        raise ValueError(f"{path}: not a PCM WAV file ({exc or 'truncated header'})") from None


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """``(waveform, sample_rate)``: the clip in ``path`` as mono float32 in [-1, 1] (channels averaged).

    8-, 16-, 24- and 32-bit integer PCM are read; anything else, or a file whose data is shorter than
    its header says, is a ValueError naming the file.
    """
    rate, channels, width, frames = wav_info(path)
    with wave.open(str(path), "rb") as f:
        data = f.readframes(frames)
    if width not in (1, 2, 3, 4):
        raise ValueError(f"{path}: {8 * width}-bit samples; expected 8-, 16-, 24- or 32-bit PCM")
    if frames == 0 or len(data) < channels * width:
        raise ValueError(f"{path}: the WAV file holds no samples")
    usable = len(data) // (channels * width) * (channels * width)
    raw = np.frombuffer(data[:usable], dtype=np.uint8)
    if width == 3:  # 24-bit little-endian: widened to 32 bits, the low byte zero
        wide = np.zeros((len(raw) // 3, 4), dtype=np.uint8)
        wide[:, 1:] = raw.reshape(-1, 3)
        samples = wide.view("<i4").ravel().astype(np.float64) / 2**31
    elif width == 1:
        samples = (raw.astype(np.float64) - 128) / 128
    else:
        samples = np.frombuffer(raw.tobytes(), dtype=np.dtype(_PCM[width]).newbyteorder("<")).astype(np.float64)
        samples /= 2 ** (8 * width - 1)
    mono = samples.reshape(-1, channels).mean(axis=1)
    return mono.astype(np.float32), rate


def resample(x: np.ndarray, rate: int, target: int) -> np.ndarray:
    """``x`` sampled at ``rate`` Hz brought to ``target`` Hz, band-limited (numpy's FFT: the spectrum
    cut or zero-padded to the new length, as ``scipy.signal.resample`` does)."""
    if rate == target or len(x) == 0:
        return np.asarray(x, dtype=np.float32)
    n = max(1, round(len(x) * target / rate))
    spectrum = np.fft.rfft(x.astype(np.float64))
    kept = np.zeros(n // 2 + 1, dtype=complex)
    m = min(len(spectrum), len(kept))
    kept[:m] = spectrum[:m]
    return (np.fft.irfft(kept, n) * (n / len(x))).astype(np.float32)


def fit_length(x: np.ndarray, samples: int) -> np.ndarray:
    """The first ``samples`` of ``x``, zero-padded at the end where it is shorter."""
    x = np.asarray(x, dtype=np.float32)[:samples]
    return np.pad(x, (0, samples - len(x))) if len(x) < samples else x


def audio_spec(metadata: dict | None) -> tuple[int, int] | None:
    """``(sample_rate, samples)`` of an audio model's metadata (its ``audio`` entry), or None."""
    audio = (metadata or {}).get("audio")
    if not isinstance(audio, dict):
        return None
    try:
        return int(audio["sample_rate"]), int(audio["samples"])
    except (KeyError, TypeError, ValueError):
        return None
