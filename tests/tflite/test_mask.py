"""tflite/mask.py: a segmentation model's masks drawn as PNGs (read back with Pillow), and the
runner's command line on a real per-pixel .tflite made by TensorFlow in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tflite import mask

REPO = Path(__file__).resolve().parents[2]
NAMES = ["background", "circle", "square"]

# A per-pixel classifier without training: class 0 below 1/3, 1 up to 2/3, 2 above (scores peak at
# 1/6, 1/2 and 5/6 of the pixel's value). Converted in its own process: this one never imports TF.
MAKE_MODEL = textwrap.dedent(
    """
    import sys
    import numpy as np
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, 6, 8, 1], tf.float32)])
    def segment(x):
        return tf.nn.softmax(-50.0 * tf.square(x - tf.constant([1 / 6, 1 / 2, 5 / 6])), axis=-1)

    converter = tf.lite.TFLiteConverter.from_concrete_functions([segment.get_concrete_function()], segment)
    open(sys.argv[1], "wb").write(converter.convert())
    """
)


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("segmenter")
    path = folder / "model.tflite"
    proc = subprocess.run([sys.executable, "-c", MAKE_MODEL, str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return path


def images() -> np.ndarray:
    """Two 6x8 images: thirds of brightness in columns (image 0) and rows (image 1)."""
    x = np.zeros((2, 6, 8, 1), dtype=np.float32)
    x[0, :, :, 0] = np.repeat([[0.1, 0.1, 0.5, 0.5, 0.5, 0.9, 0.9, 0.9]], 6, axis=0)
    x[1, :, :, 0] = np.repeat([[0.1], [0.1], [0.1], [0.1], [0.5], [0.9]], 8, axis=1)
    return x


def expected_masks() -> np.ndarray:
    return np.digitize(images()[..., 0], [1 / 3, 2 / 3])


def cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tflite", *map(str, args)], capture_output=True, text=True, cwd=REPO)


def test_palette_is_voc_and_png_reads_back_as_indices(tmp_path):
    colours = mask.palette(5)
    assert colours.tolist() == [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0], [0, 0, 128]]
    assert mask.palette(256)[255].tolist() == [224, 224, 192]
    indices = np.array([[0, 1, 2], [4, 3, 0]], dtype=np.uint8)
    with Image.open(mask.write_png(tmp_path / "m.png", indices, colours)) as png:
        assert png.mode == "P" and png.size == (3, 2)
        np.testing.assert_array_equal(np.asarray(png), indices)
        assert png.getpalette()[:15] == colours.ravel().tolist()
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 10
    with Image.open(mask.write_png(tmp_path / "rgb.png", rgb)) as png:
        assert png.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(png), rgb)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.png", "rgb.png"]  # no temporary file left
    with pytest.raises(ValueError, match="at most 256 classes; the model has 300"):
        mask.palette(300)


def test_overlay_tints_classes_but_not_class_zero():
    image = np.full((2, 2, 1), 0.5, dtype=np.float32)
    m = np.array([[0, 1], [2, 0]], dtype=np.uint8)
    out = mask.overlay(image, m, mask.palette(3))
    assert out.dtype == np.uint8 and out.shape == (2, 2, 3)
    assert out[0, 0].tolist() == [128, 128, 128] == out[1, 1].tolist()  # gray 0.5 as RGB, untinted
    assert out[0, 1].tolist() == [128, 64, 64] and out[1, 0].tolist() == [64, 128, 64]
    assert mask.viewable(np.array([[[-2.0], [2.0]]])).ravel().tolist() == [0, 0, 0, 255, 255, 255]
    big = mask.overlay(np.zeros((4, 4, 3), np.uint8), m, mask.palette(3))  # a mask of half the size
    assert big[0, 2].tolist() == [64, 0, 0] and big[3, 0].tolist() == [0, 64, 0]


def test_shares_largest_first_absent_left_out():
    assert mask.shares(np.array([[2, 2, 0, 2]]), NAMES) == {"square": 0.75, "background": 0.25}


@pytest.mark.parametrize("sidecar", ["labels.txt", "model.json"])
def test_runner_writes_masks_and_overlays(model, tmp_path, sidecar):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "seg.tflite").write_bytes(model.read_bytes())
    if sidecar == "labels.txt":  # no metadata: (H, W, C) outputs with one channel per label
        (folder / "labels.txt").write_text("\n".join(NAMES) + "\n")
    else:
        (folder / "model.json").write_text(json.dumps({"task": "segmentation", "class_names": NAMES}))
    np.save(tmp_path / "pics.npy", images())
    proc = cli(folder / "seg.tflite", "--input", tmp_path / "pics.npy", "--out", tmp_path / "masks", "--json")
    assert proc.returncode == 0, proc.stderr
    records = json.loads(proc.stdout)["predictions"]
    assert [r["classes"] for r in records] == [
        {"square": 0.375, "circle": 0.375, "background": 0.25},
        {"background": 4 / 6, "circle": 1 / 6, "square": 1 / 6},
    ]
    for i, record in enumerate(records):
        assert record["mask"] == str(tmp_path / "masks" / f"pics_{i}_mask.png")
        with Image.open(record["mask"]) as png:
            assert png.mode == "P"
            np.testing.assert_array_equal(np.asarray(png), expected_masks()[i])
        with Image.open(record["overlay"]) as png:
            assert png.mode == "RGB" and png.size == (8, 6)
            pixels = np.asarray(png)
            assert pixels[0, 0].tolist() == [26, 26, 26]  # class 0 left as the image: 0.1 * 255

    text = cli(folder / "seg.tflite", "--input", tmp_path / "pics.npy")  # default: beside the input
    assert text.returncode == 0, text.stderr
    assert text.stdout.splitlines()[1] == (
        f"1: background 66.7%, circle 16.7%, square 16.7% -> {tmp_path / 'pics_1_mask.png'}, pics_1_overlay.png"
    )
    assert (tmp_path / "pics_0_overlay.png").is_file()


def test_without_labels_or_metadata_the_outputs_stay_numbers(model, tmp_path):
    np.save(tmp_path / "one.npy", images()[:1])
    proc = cli(model, "--input", tmp_path / "one.npy", "--out", tmp_path / "masks")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("0: ") and not (tmp_path / "masks").exists()
