"""The device runner's detections: pixel boxes with class names, drawn in class colours, and image files read."""

import numpy as np
import pytest

from tflite import boxes

ROWS = np.array(
    [
        [0.25, 0.5, 0.75, 1.0, 1, 0.9],  # ymin, xmin, ymax, xmax, class, score
        [0.0, 0.0, 0.5, 0.25, 0, 0.3],
        [0.1, 0.1, 0.2, 0.2, 2, 0.1],  # below the score shown
        [0.0, 0.0, 0.0, 0.0, -1, 0.0],  # padding
    ],
    np.float32,
)


def test_describe_gives_pixel_boxes_best_first_with_names():
    found = boxes.describe(ROWS, ["circle", "square", "triangle"], (32, 64))
    assert [d["label"] for d in found] == ["square", "circle"]
    assert found[0]["box"] == [32.0, 8.0, 64.0, 24.0]  # x_min, y_min, x_max, y_max in pixels
    assert found[1]["score"] == pytest.approx(0.3)
    assert boxes.describe(ROWS, None, (32, 64))[0]["label"] == "1"


def test_drawn_scales_up_and_outlines_each_box_in_its_colour():
    image = np.full((32, 32, 1), 0.5, np.float32)
    found = boxes.describe(ROWS, None, (32, 32))
    rgb = boxes.drawn(image, found, 3)
    assert rgb.shape == (256, 256, 3)  # 8x: at least MIN_SIDE
    colours = {tuple(c) for c in rgb.reshape(-1, 3)}
    assert (128, 128, 128) in colours and len(colours) == 3  # grey, and one colour per box class
    assert tuple(rgb[64 + 20, 128]) != (128, 128, 128)  # the square's left side (x = 16 px)
    assert tuple(rgb[64 + 20, 140]) == (128, 128, 128)  # inside it: untouched


def test_read_image_converts_and_resizes(tmp_path):
    from PIL import Image

    Image.fromarray(np.full((10, 20, 3), 200, np.uint8)).save(tmp_path / "a.png")
    x = boxes.read_image(tmp_path / "a.png", (8, 8, 1))
    assert x.shape == (8, 8, 1) and x.dtype == np.float32 and np.allclose(x, 200, atol=1)
    with pytest.raises(FileNotFoundError, match="no such file"):
        boxes.read_image(tmp_path / "b.png", (8, 8, 1))
    (tmp_path / "c.png").write_text("not an image")
    with pytest.raises(ValueError, match="c.png: not an image Pillow reads"):
        boxes.read_image(tmp_path / "c.png", (8, 8, 1))
