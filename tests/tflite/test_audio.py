"""``tflite/audio.py`` and ``python -m tflite MODEL --input clip.wav``: WAV files read with the standard
library (every PCM width, stereo averaged), resampled with numpy as scipy does it for training, and
an audio model's windows classified on the device as LiteRT classifies the same clips as arrays."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import sounds_cnn, write_wav

from tflite import audio
from tflite.metadata import EMBEDDED_KEY, embed_metadata, read_metadata

REPO = Path(__file__).resolve().parents[2]


def tone(frequency, seconds, rate, level=0.5):
    return level * np.sin(2 * np.pi * frequency * np.arange(int(seconds * rate)) / rate)


@pytest.mark.parametrize("width, channels", [(1, 1), (2, 1), (2, 2), (3, 2), (4, 1)])
def test_reads_every_pcm_width_as_mono_float(tmp_path, width, channels):
    x = tone(440, 0.1, 8000)
    path = write_wav(tmp_path / "a.wav", x, 8000, width, channels)
    assert audio.wav_info(path) == (8000, channels, width, len(x))
    got, rate = audio.read_wav(path)
    assert rate == 8000 and got.dtype == np.float32 and got.shape == x.shape
    np.testing.assert_allclose(got, x, atol=2 / 2 ** (8 * width - 1) + 1e-6)  # one step of the format


def test_files_that_are_not_pcm_wav_are_named(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt ")
    with pytest.raises(ValueError, match=f"^{bad}: not a PCM WAV file"):
        audio.read_wav(bad)
    empty = write_wav(tmp_path / "empty.wav", np.zeros(0), 8000)
    with pytest.raises(ValueError, match=f"^{empty}: the WAV file holds no samples"):
        audio.read_wav(empty)


def test_resampling_keeps_the_pitch_and_agrees_with_scipy():
    from scipy.signal import resample_poly  # what audio_folder resamples with for training

    x = tone(1000, 0.5, 44100)
    got = audio.resample(x, 44100, 16000)
    assert len(got) == 8000
    assert np.abs(np.fft.rfft(got)).argmax() * 16000 / 8000 == 1000
    theirs = resample_poly(x, 160, 441)
    inner = slice(200, -200)  # the FFT treats the clip as periodic: its ends differ
    assert np.abs(got[inner] - theirs[inner]).max() < 0.01


def test_fit_length_cuts_or_pads_at_the_end():
    x = np.arange(1, 6, dtype=np.float32)
    assert audio.fit_length(x, 3).tolist() == [1, 2, 3]
    assert audio.fit_length(x, 7).tolist() == [1, 2, 3, 4, 5, 0, 0]


def cli(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "tflite", *map(str, args)], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )


def top1(proc):
    assert proc.returncode == 0, proc.stderr
    return [p["top"][0]["label"] for p in json.loads(proc.stdout)["predictions"]]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    run = sounds_cnn(tmp_path_factory, "torch", exported=True)
    return run / "export" / "tflite" / "model_int8-mixed-floatio.tflite"


@pytest.mark.slow
def test_a_recording_is_classified_window_by_window(model, tmp_path):
    from scipy.signal import resample_poly

    from plugins.datasets.sounds import CLASS_NAMES, load

    x, y = load().test
    clips = x[:10]
    np.save(tmp_path / "clips.npy", clips)
    # one recording of ten clips, at 44.1 kHz in 16-bit stereo, as a phone would save it
    recording = resample_poly(np.concatenate(clips), 441, 160)
    wav = write_wav(tmp_path / "recording.wav", recording, 44100, 2, 2)
    from_wav, from_array = (
        top1(cli(model, "--input", wav, "--json")),
        top1(cli(model, "--input", tmp_path / "clips.npy", "--json")),
    )
    assert len(from_wav) == 10  # 5 s at the model's 0.5 s a window
    assert sum(a == b for a, b in zip(from_wav, from_array)) >= 9, (from_wav, from_array)
    assert sum(a == CLASS_NAMES[c] for a, c in zip(from_wav, y[:10])) >= 8, (from_wav, y[:10])
    text = cli(model, "--input", wav, "--top", "2")
    assert text.returncode == 0 and text.stdout.splitlines()[0].startswith(f"0: {from_wav[0]} ")


@pytest.mark.slow
def test_wav_errors_are_one_line(model, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not a wav")
    proc = cli(model, "--input", bad)
    assert (
        proc.returncode == 1
        and proc.stderr.strip() == f"tflite: error: {bad}: not a PCM WAV file (file does not start with RIFF id)"
    )
    # the same file without the audio facts in its metadata: not an audio model
    meta = json.loads(read_metadata(model)[EMBEDDED_KEY])
    meta.pop("audio")
    other = embed_metadata(model, tmp_path / "plain.tflite", EMBEDDED_KEY, json.dumps(meta).encode())
    wav = write_wav(tmp_path / "a.wav", tone(440, 0.5, 16000), 16000)
    proc = cli(other, "--input", wav)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == (
        f"tflite: error: --input {wav}: a WAV clip, but plain.tflite's metadata records no audio sample rate: a "
        ".wav input is for a model trained on an audio dataset (sounds, audio_folder)"
    )
