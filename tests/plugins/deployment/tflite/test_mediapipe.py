"""MediaPipe Tasks, the API apps load models with, runs kerastack's exports from their standard metadata
alone: ImageClassifier (runs trained under torch and JAX), TextClassifier on raw strings, ImageSegmenter
on a U-Net; float32 and int8 (uint8 at the edges, ``io=auto``). Tiny models, trained once per module;
one TensorFlow process exports them all and runs every check."""

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import one_line_error, read_json, run_cli, run_python, sounds_cnn

pytestmark = pytest.mark.slow

SIZE = 16
CLASSES = ("circle", "square", "triangle")
CUES = (("good", "great", "lovely", "Nice"), ("bad", "awful", "POOR", "terrible"))
FILLER = ["the", "a", "film", "was", "it", "and", "very", "this", "plot", "acting", "story", "really", "quite"]


def write_images(root, n, seed):
    """RGB shapes (shapes.draw) in colour on a dark background: ``root/CLASS/i.png``."""
    from PIL import Image

    from plugins.datasets.shapes import draw

    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % len(CLASSES))
    images, coverage = _colour(draw(y, SIZE, rng), rng)
    for i in range(n):
        (root / CLASSES[y[i]]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[i], "RGB").save(root / CLASSES[y[i]] / f"{i:04d}.png")


def write_masks(root, n, seed):
    """The same shapes as ``images/`` and their class per pixel as ``masks/`` (mask_folder's layout)."""
    from PIL import Image

    from plugins.datasets.shapes import draw

    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % len(CLASSES))
    images, coverage = _colour(draw(y, SIZE, rng), rng)
    masks = np.where(coverage >= 0.5, y[:, None, None] + 1, 0).astype("uint8")
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    (root / "labels.txt").write_text("background\n" + "\n".join(CLASSES) + "\n")
    for i in range(n):
        Image.fromarray(images[i], "RGB").save(root / "images" / f"{i:04d}.png")
        Image.fromarray(masks[i], "L").save(root / "masks" / f"{i:04d}.png")


def _colour(coverage, rng):
    n = len(coverage)
    shape, ground = rng.uniform(0.5, 1.0, (n, 3)), rng.uniform(0.0, 0.3, (n, 3))
    image = ground[:, None, None] * (1 - coverage[..., None]) + shape[:, None, None] * coverage[..., None]
    return (np.clip(image, 0, 1) * 255).round().astype("uint8"), coverage


def write_texts(root, n, seed):
    """Two classes of short reviews, capitalized and punctuated as people write: ``root/CLASS/i.txt``."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        label = i % 2
        words = [*rng.choice(FILLER, 6), *rng.choice(CUES[label], 2)]
        rng.shuffle(words)
        (root / ("positive", "negative")[label]).mkdir(parents=True, exist_ok=True)
        (root / ("positive", "negative")[label] / f"{i:03d}.txt").write_text(" ".join(words).capitalize() + "!")


CNN = {"arch": "cnn", "data": "image_folder", "hparams": {"filters": 8, "dense": 16}, "epochs": 5}
TEXT = {"arch": "transformer", "data": "text_folder", "hparams": {"dim": 16, "blocks": 1, "heads": 1, "mlp_dim": 16}}
UNET = {"arch": "unet", "data": "mask_folder", "hparams": {"filters": 4}, "epochs": 3}
# name → (data writer, samples, backend, core.train's arguments)
RUNS = {
    "image_torch": (write_images, 120, "torch", CNN),
    "image_jax": (write_images, 120, "jax", CNN),
    "text": (write_texts, 60, "torch", {**TEXT, "data_options": {"length": 12}, "epochs": 6}),
    "unet": (write_masks, 72, "torch", UNET),
}
IMAGE_OPTIONS = {"size": SIZE}

# One process per backend trains its runs.
TRAIN = """
import json, sys
from core import train
for name, arguments in json.loads(sys.argv[1]).items():
    train(**arguments, seed=0, verbose=0)
"""

# One TensorFlow process: export float32 and int8 of every run, then MediaPipe on each file.
JOB = """
import json, sys
from pathlib import Path
import numpy as np
from core import export, load_model
from core.deploy.client import check_client
from tflite.mediapipe_client import MediaPipeClient
from tflite.metadata import associated_files, read_metadata
from tflite.runner import TFLiteModel, load_metadata
from tflite.text import Tokenizer

root = Path(sys.argv[1])
results = {}
for name in ("image_torch", "image_jax", "text", "unet"):
    run = root / name / "run"
    options = {"quantize": "none,int8", "layer_errors": False}
    for path in [p for p in export(run, "tflite", options) if p.suffix == ".tflite"]:
        lite = TFLiteModel(path)
        meta = load_metadata(path)
        found = {
            "client": check_client(path, run),
            "io": [lite.input_dtype.name, lite.output_dtype.name],
            "input_quantization": [float(q) for q in lite.input_details["quantization"]],
            "entries": sorted(read_metadata(path)),
            "associated": sorted(associated_files(path)),
            "labels": associated_files(path).get("labels.txt", b"").decode(),
            "entry": meta["file"],
        }
        if name == "text":  # raw strings, as people write them, against Keras on the same texts
            texts = [f.read_text() for f in sorted((root / name / "data").rglob("*.txt"))]
            ids = Tokenizer(meta["vocabulary"], meta["tokenizer"]["length"]).encode(texts)
            keras = load_model(run / "model.keras", compile=False).predict(ids, verbose=0).argmax(-1)
            with MediaPipeClient(path, meta) as app:
                raw = np.asarray(app.predict(texts))
            found["raw_text_keras"] = float(np.mean(raw == keras))
            found["raw_text_litert"] = float(np.mean(raw == lite.predict(ids).argmax(-1)))
            found["texts"] = len(texts)
        results[f"{name}/{path.name}"] = found
json.dump(results, open(root / "results.json", "w"))
"""


@pytest.fixture(scope="module")
def apps(tmp_path_factory):
    root = tmp_path_factory.mktemp("mediapipe")
    jobs = {}
    for name, (write, samples, backend, arguments) in RUNS.items():
        write(root / name / "data", samples, seed=len(name))
        options = {**({} if arguments["data"] == "text_folder" else IMAGE_OPTIONS), **arguments.get("data_options", {})}
        jobs.setdefault(backend, {})[name] = {
            **arguments,
            "data_options": {**options, "path": str(root / name / "data")},
            "out": str(root / name / "run"),
        }
    for backend, runs in jobs.items():
        run_python(TRAIN, json.dumps({k: {**v, "backend": backend} for k, v in runs.items()}),
                   env={"KERAS_BACKEND": backend})  # fmt: skip
    run_python(JOB, root, env={"KERAS_BACKEND": "tensorflow"})
    return root, read_json(root / "results.json")


@pytest.mark.parametrize("name", ["image_torch", "image_jax"])
@pytest.mark.parametrize("variant", ["float32", "int8"])
def test_image_classifier_agrees_with_litert(apps, name, variant):
    _, results = apps
    r = results[f"{name}/model_{variant}.tflite"]
    client = r["client"]
    assert client["client_task"] == "ImageClassifier" and client["split"] == "test", client
    assert client["agreement"] >= 0.99, client
    assert client["samples"] >= 15
    assert r["labels"] == "circle\nsquare\ntriangle\n"
    assert r["entries"] == ["CONVERSION_METADATA", "TFLITE_METADATA", "kerastack", "min_runtime_version"]


@pytest.mark.parametrize("name", ["image_torch", "image_jax"])
def test_int8_image_model_takes_raw_pixels_as_uint8(apps, name):
    """What MediaPipe feeds: the 8-bit pixels as they are (it refuses int8 inputs)."""
    _, results = apps
    r = results[f"{name}/model_int8.tflite"]
    assert r["io"] == ["uint8", "uint8"] and r["entry"]["io"] == "uint8"
    assert r["input_quantization"] == pytest.approx([1 / 255, 0.0])  # pixel / 255, as image_folder
    assert r["entry"]["input_raw_pixels"] is True
    assert results[f"{name}/model_float32.tflite"]["io"] == ["float32", "float32"]


@pytest.mark.parametrize("variant", ["float32", "int8"])
def test_text_classifier_takes_raw_strings(apps, variant):
    _, results = apps
    r = results[f"text/model_{variant}.tflite"]
    assert r["texts"] == RUNS["text"][1]
    # MediaPipe tokenizes the strings as kerastack does: the same class as LiteRT on kerastack's ids,
    # and as Keras (the float32 file exactly; int8 may differ where quantization moves a close call).
    assert r["raw_text_litert"] == 1.0
    assert r["raw_text_keras"] == 1.0 if variant == "float32" else r["raw_text_keras"] >= 0.95
    assert r["client"]["client_task"] == "TextClassifier" and r["client"]["agreement"] >= 0.99
    assert r["associated"] == ["labels.txt", "vocab.txt"]
    assert r["entry"]["standard_metadata"]["min_parser_version"] == "1.2.1"
    assert r["io"] == (["int32", "float32"] if variant == "float32" else ["int32", "uint8"])


@pytest.mark.parametrize("variant", ["float32", "int8"])
def test_image_segmenter_category_mask_is_the_litert_argmax(apps, variant):
    _, results = apps
    client = results[f"unet/model_{variant}.tflite"]["client"]
    assert client["client_task"] == "ImageSegmenter" and client["unit"] == "pixel"
    assert client["compared"] == client["samples"] * SIZE * SIZE
    assert client["agreement"] >= 0.99, client


def test_device_reader_still_reads_kerastacks_entry(apps):
    """tflite/'s own reader (what ships to devices) beside the standard entry and the appended zip."""
    root, _ = apps
    path = root / "image_jax" / "run" / "export" / "tflite" / "model_int8.tflite"
    shown = subprocess.run(
        [sys.executable, "-m", "tflite", str(path), "--metadata", "--json"], capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr[-2000:]
    meta = json.loads(shown.stdout)["metadata"]
    assert meta["task"] == "classification" and meta["class_names"] == list(CLASSES)
    assert meta["files"]["model_int8.tflite"]["standard_metadata"]["input_kind"] == "image"


def test_verify_client_mediapipe_prints_the_agreement(apps):
    root, _ = apps
    run = root / "image_torch" / "run"
    shown = run_cli("verify", run / "export" / "tflite" / "model_int8.tflite", "--run", run, "--client", "mediapipe")
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert "mediapipe ImageClassifier" in shown.stdout and "samples agreeing with LiteRT" in shown.stdout
    agreement = float(shown.stdout.split("agreeing with LiteRT ")[1].split()[0])
    assert agreement >= 0.99
    bad = run_cli("verify", run / "export" / "tflite" / "model_int8.tflite", "--run", run, "--client", "coreml")
    assert "--client 'coreml' is not one of litert, mediapipe" in one_line_error(bad, 2)


def test_a_model_mediapipe_cannot_run_is_named():
    from tflite.mediapipe_client import client_task

    meta = {"task": "regression", "output": "values", "file": {"standard_metadata": {"input_kind": "features"}}}
    with pytest.raises(ValueError, match="no client for a regression model of features inputs; valid: image classes"):
        client_task(meta)
    with pytest.raises(ValueError, match="no standard metadata"):
        client_task({"output": "classes", "file": {}})


AUDIO_JOB = """
import json, sys
from core import load_model
from core.deploy.client import check_client
from plugins.deployment.tflite.options import TFLiteOptions
from tflite.runner import load_metadata

run = sys.argv[1]
results = {}
for name in ("model_float32.tflite", "model_int8-mixed-floatio.tflite"):
    path = f"{run}/export/tflite/{name}"
    results[name] = {"client": check_client(path, run), "entry": load_metadata(path)["file"]["standard_metadata"]}
model = load_model(f"{run}/model.keras", compile=False)
results["io_auto"] = TFLiteOptions().for_model(model).io
json.dump(results, open(f"{run}/mediapipe.json", "w"))
"""


@pytest.fixture(scope="module")
def sound_app(tmp_path_factory):
    run = sounds_cnn(tmp_path_factory, "torch", exported=True)  # io=float: AudioClassifier refuses int8 inputs
    run_python(AUDIO_JOB, run, env={"KERAS_BACKEND": "tensorflow"})
    return read_json(run / "mediapipe.json")


@pytest.mark.parametrize("name", ["model_float32.tflite", "model_int8-mixed-floatio.tflite"])
def test_audio_classifier_takes_the_waveform(sound_app, name):
    # Measured: 60 of 60 test clips agree, both files; the int8 file with int8 input is refused
    # ("Requested one of these types: float16/float32, got INT8").
    client, entry = sound_app[name]["client"], sound_app[name]["entry"]
    assert client["client_task"] == "AudioClassifier" and client["split"] == "test", client
    assert client["agreement"] >= 0.99 and client["samples"] == 60, client
    assert client["client_accuracy"] >= 0.8, client
    assert entry["input_kind"] == "audio" and entry["sample_rate"] == 16000, entry
    assert entry["min_parser_version"] == "1.3.0", entry  # AudioProperties came with 1.3.0


def test_io_auto_gives_an_audio_model_float_edges(sound_app):
    assert sound_app["io_auto"] == "float"
