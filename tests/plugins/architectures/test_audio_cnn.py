"""``audio_cnn`` learns the synthetic ``sounds`` under every backend from the raw waveform (the log-mel
front end is inside the model), and its LiteRT files keep Keras's accuracy: float32, and int8 with
the front end kept float (``keep_float=log_mel``, ``io=float``), exported from a torch-trained run. test_zoo.py
checks that it trains, reloads and exports (float32 and plain int8, builtin ops) under each backend."""

import json

import pytest
from conftest import TEST_ALL, read_json, run_python, sounds_cnn

from core import DataSpec
from core.backend import BACKENDS

pytestmark = pytest.mark.slow

INSPECT = """
import json, sys
from tflite import TFLiteModel
lite = TFLiteModel(sys.argv[1])
print(json.dumps({"ops": sorted(set(lite.op_names())), "audio": lite.metadata["audio"],
                  "io": [lite.input_dtype.name, list(lite.input_shape), lite.output_dtype.name]}))
"""


# make test trains under torch (the run exported); make test-all under every backend.
TRAINED = BACKENDS if TEST_ALL else ("torch",)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return {backend: sounds_cnn(tmp_path_factory, backend, exported=backend == "torch") for backend in TRAINED}


@pytest.fixture(scope="module")
def verified(runs):
    found = read_json(runs["torch"] / "verified.json")
    int8 = runs["torch"] / "export" / "tflite" / "model_int8-mixed-floatio.tflite"
    found.update(json.loads(run_python(INSPECT, int8).stdout))  # LiteRT alone: no framework to start
    return found


@pytest.mark.parametrize("backend", TRAINED)
def test_learns_the_sounds_under_every_backend(runs, backend):
    # Measured (8 epochs, 400 clips of 0.5 s, test split 60): see docs/findings.md "Sound".
    metrics = read_json(runs[backend] / "metrics.json")
    assert metrics["backend"] == backend
    assert metrics["test_accuracy"] >= 0.8, metrics  # chance is 0.25


def test_litert_files_keep_keras_accuracy(verified):
    float32, int8 = verified["model_float32.tflite"], verified["model_int8-mixed-floatio.tflite"]
    assert float32["agreement"] == 1.0 and float32["max_abs_diff"] < 1e-4, float32
    assert int8["tflite_accuracy"] >= int8["keras_accuracy"] - 0.04, int8  # within 2 of the 60 test clips
    assert int8["agreement"] >= 0.95, int8
    # the file takes the float waveform (io=float); its CNN is int8, its front end float
    assert verified["io"] == ["float32", [8000], "float32"]
    assert {"RFFT2D", "LOG", "CONV_2D", "QUANTIZE", "DEQUANTIZE"} <= set(verified["ops"])
    assert verified["audio"] == {"sample_rate": 16000, "samples": 8000}


@pytest.mark.parametrize(
    "shape, hparams, message",
    [
        ((16, 16, 1), {}, "audio_cnn needs waveforms (samples,) or (samples, 1); the dataset gives (16, 16, 1)"),
        ((256,), {}, "audio_cnn needs clips of at least fft_length=512 samples; got 256"),
        ((8000,), {"frame_ms": 40}, "a frame of at most fft_length=512 samples; got frame_ms=40 (640 samples)"),
    ],
)
def test_refuses_what_it_cannot_take(shape, hparams, message):
    from plugins.architectures.audio_cnn import build

    with pytest.raises(ValueError, match="audio_cnn needs") as caught:
        build(DataSpec(shape, 3), **hparams)
    assert message in str(caught.value)
