"""``audio_folder``: WAV clips by class folder, streamed as PyDatasets — resampled, cut or padded,
mono, the audio facts for the exporter; one-line errors naming a file that is not PCM WAV.

The PyDataset checks import keras, so they run in one subprocess; errors come before keras is
imported and are checked here."""

import json

import numpy as np
import pytest
from conftest import run_python, write_wav

from core import KerastackError, PluginHost, UsageError
from plugins.datasets.audio_folder import load

JAX = {"KERAS_BACKEND": "jax"}  # imports fastest; these checks do not depend on the backend


def tone(frequency, seconds, rate, level=0.5):
    return level * np.sin(2 * np.pi * frequency * np.arange(int(seconds * rate)) / rate)


def write_clips(root, per_class=10):
    """``low`` clips hum at 200 Hz, ``high`` ones at 3 kHz; rates, widths, channels and lengths vary."""
    formats = [(16000, 2, 1), (8000, 1, 1), (22050, 3, 2), (44100, 2, 2), (48000, 4, 1)]
    for name, hz in (("low", 200), ("high", 3000)):
        for i in range(per_class):
            rate, width, channels = formats[i % len(formats)]
            seconds = (0.3, 0.5, 0.8)[i % 3]
            folder = root / name / ("more" if i % 4 == 0 else "")
            write_wav(folder / f"{i:02d}.wav", tone(hz, seconds, rate), rate, width, channels)
    (root / "low" / "notes.txt").write_text("not a clip: ignored")
    return root


def test_registered_with_its_options():
    host = PluginHost(["plugins.datasets.audio_folder"], builtins=(), entry_points=False, disabled=())
    assert host.registry("dataset").get("audio_folder").defaults == {
        "path": "",
        "sample_rate": 16000,
        "duration": 1.0,
        "batch_size": 32,
        "validation": 0.15,
        "test": 0.15,
        "seed": 0,
    }


STREAMING = """
import json, sys
import numpy as np
from core.data import as_arrays, spec_of
from plugins.datasets.audio_folder import load

data = load(sys.argv[1], duration=0.5, batch_size=4, seed=1)
facts = {"class_names": data.class_names, "spec": repr(spec_of(data)), "audio": data.audio,
         "files": [len(s.paths) for s in (data.train, data.validation, data.test)]}
x, y = data.train[0]
facts["batch"] = [list(x.shape), str(x.dtype), list(y.shape), str(y.dtype)]
x, y = as_arrays(data.train)
spectrum = np.abs(np.fft.rfft(x, axis=1))
peak_hz = spectrum.argmax(axis=1) * 16000 / x.shape[1]
facts["peaks"] = {name: sorted(set(np.round(peak_hz[y == c]).tolist())) for c, name in enumerate(data.class_names)}
facts["levels"] = [float(np.abs(x).max(axis=1).min()), float(np.abs(x).max())]
paths = [data.train.paths[i] for i in data.train.order]
lengths = {str(p): int(np.flatnonzero(clip).max()) + 1 for p, clip in zip(paths, as_arrays(data.train)[0])}
facts["padded"] = sorted({n for p, n in lengths.items() if p.endswith(("00.wav", "03.wav", "06.wav"))})
facts["rate_8k"] = load(sys.argv[1], sample_rate=8000, duration=0.25).audio
victim = data.test.paths[data.test.order[0]]
open(victim, "wb").write(b"RIFF garbage")
try:
    data.test[0]
except Exception as exc:
    facts["damaged"] = [type(exc).__name__, str(exc), str(victim)]
print(json.dumps(facts))
"""


def test_splits_stream_clips_at_one_rate_and_length(tmp_path):
    root = write_clips(tmp_path / "clips", per_class=13)
    facts = json.loads(run_python(STREAMING, root, env=JAX).stdout.strip().splitlines()[-1])
    assert facts["class_names"] == ["high", "low"]
    assert "input_shape=(8000,), num_classes=2" in facts["spec"]
    assert facts["audio"] == {"sample_rate": 16000, "samples": 8000}
    assert facts["files"] == [18, 4, 4]  # 26 clips, stratified
    assert facts["batch"] == [[4, 8000], "float32", [4], "int32"]
    # every clip, whatever its rate, width and channels, hums at its class's pitch at 16 kHz
    assert facts["peaks"] == {"high": [3000.0], "low": [200.0]}
    low, high = facts["levels"]
    assert low > 0.45 and high < 0.56  # mono, scaled to [-1, 1] whatever the width
    assert facts["padded"] == [4800]  # a 0.3 s clip is zero-padded to 0.5 s
    assert facts["rate_8k"] == {"sample_rate": 8000, "samples": 2000}
    kind, message, victim = facts["damaged"]
    assert kind == "KerastackError" and "\n" not in message
    assert message.startswith(f"dataset 'audio_folder': cannot read {victim}: ")


def error(exc_type, path="", **options):
    with pytest.raises(exc_type) as info:
        load(str(path), **options)
    message = str(info.value)
    assert "\n" not in message and message.startswith("dataset 'audio_folder': ")
    return message


def test_errors_name_the_option_the_folder_or_the_file(tmp_path):
    assert "option path is not set; give the folder of class subfolders" in error(UsageError)
    root = write_clips(tmp_path / "clips", per_class=3)
    (tmp_path / "clips" / "silent").mkdir()
    assert f"class folder {root / 'silent'} holds no .wav/.wave clips" in error(UsageError, root)
    (root / "silent").rmdir()
    assert "option sample_rate=100: expected an integer in [1000, 192000]" in error(UsageError, root, sample_rate=100)
    assert "option duration=0: expected seconds in [0.05, 60]" in error(UsageError, root, duration=0)
    broken = root / "low" / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00")
    assert error(KerastackError, root).startswith(f"dataset 'audio_folder': {broken}: not a PCM WAV file (")
    broken.write_bytes(b"")
    assert f"{broken}: not a PCM WAV file" in error(KerastackError, root)
    write_wav(broken, np.zeros(0), 16000)
    assert f"{broken}: the WAV file holds no samples" in error(KerastackError, root)
