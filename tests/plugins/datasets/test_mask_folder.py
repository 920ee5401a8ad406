"""``mask_folder``: images and their class masks (grayscale or palette PNG), class names, splits and
the one-line errors naming the file."""

import numpy as np
import pytest
from conftest import one_line_error, run_cli
from PIL import Image

from core import KerastackError, PluginHost, UsageError
from core.data import check_dataset, spec_of
from plugins.datasets.mask_folder import load


def write_folder(root, n=10, size=(24, 20), palette_every=2, seed=0):
    """``n`` RGB images (JPEG and PNG) of a dark background with a bright rectangle (class 1) and a
    grey one (class 2); masks as grayscale PNGs, every ``palette_every``-th as a palette PNG."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    width, height = size
    for i in range(n):
        mask = np.zeros((height, width), "uint8")
        top, left = rng.integers(0, height // 2), rng.integers(0, width // 2)
        mask[top : top + 6, left : left + 8] = 1
        mask[-5:, -7:] = 2
        pixels = np.array([20, 230, 120], "uint8")[mask]
        Image.fromarray(np.stack([pixels] * 3, -1)).save(root / "images" / f"{i:02d}.{'png' if i % 2 else 'jpg'}")
        if i % palette_every == 0:
            indexed = Image.fromarray(mask, mode="P")
            indexed.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
            indexed.save(root / "masks" / f"{i:02d}.png")
        else:
            Image.fromarray(mask, mode="L").save(root / "masks" / f"{i:02d}.png")
    return root


@pytest.fixture
def folder(tmp_path):
    return write_folder(tmp_path / "data")


def test_registered_with_its_options():
    host = PluginHost(["plugins.datasets.mask_folder"], builtins=(), entry_points=False, disabled=())
    assert host.registry("dataset").get("mask_folder").defaults == {
        "path": "",
        "classes": "",
        "size": 32,
        "channels": 3,
        "validation": 0.15,
        "test": 0.15,
        "seed": 0,
    }


def test_images_and_masks_match_pixel_for_pixel(folder):
    data = load(str(folder), classes="background,bright,grey", size=16, validation=0.2, test=0.2)
    check_dataset(data, "mask_folder")
    spec = spec_of(data)
    assert (spec.task, spec.num_classes, spec.input_shape) == ("segmentation", 3, (16, 16, 3))
    assert data.class_names == ("background", "bright", "grey")
    assert [len(s[0]) for s in (data.train, data.validation, data.test)] == [6, 2, 2]
    for x, masks in (data.train, data.validation, data.test):
        assert x.dtype == np.float32 and masks.dtype == np.int32 and masks.shape == x.shape[:3]
        # Palette and grayscale masks both give indices, aligned with their images' pixels (only
        # edges blur, in the bilinear resize and the JPEG files).
        level = x[..., 0]
        means = [level[masks == c].mean() for c in range(3)]
        assert means[0] < 0.15 and means[1] > 0.75 and abs(means[2] - 120 / 255) < 0.1, means
        assert set(np.unique(masks)) == {0, 1, 2}
    again = load(str(folder), classes="background,bright,grey", size=16, validation=0.2, test=0.2)
    np.testing.assert_array_equal(again.test[1], data.test[1])


def test_class_names_from_labels_file_else_the_indices(folder):
    assert load(str(folder)).class_names == ("0", "1", "2")
    (folder / "labels.txt").write_text("background\nbright\ngrey\nunused\n")
    data = load(str(folder), channels=1)
    assert data.class_names == ("background", "bright", "grey", "unused")
    assert spec_of(data).num_classes == 4 and data.train[0].shape[1:] == (32, 32, 1)


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda root: (root / "masks" / "03.png").unlink(),
            "image {root}/images/03.png has no mask: expected {root}/masks/03.png",
        ),
        (
            lambda root: Image.new("L", (10, 10)).save(root / "masks" / "04.png"),
            "mask {root}/masks/04.png is 10x10 but its image {root}/images/04.jpg is 24x20",
        ),
        (
            lambda root: Image.fromarray(np.full((20, 24), 3, "uint8"), "L").save(root / "masks" / "05.png"),
            "mask {root}/masks/05.png holds class index 3; the 3 classes (bg, a, b) take 0..2",
        ),
        (
            lambda root: Image.new("RGB", (24, 20)).save(root / "masks" / "06.png"),
            "mask {root}/masks/06.png is a RGB image; expected class indices: a grayscale (L) or palette (P) PNG",
        ),
    ],
)
def test_bad_files_are_errors_naming_the_file(folder, change, message):
    change(folder)
    with pytest.raises(KerastackError) as error:
        load(str(folder), classes="bg,a,b")
    assert str(error.value) == "dataset 'mask_folder': " + message.format(root=folder)


def test_bad_options_and_folders_are_usage_errors(tmp_path, folder):
    with pytest.raises(UsageError, match="option path is not set"):
        load()
    with pytest.raises(UsageError, match=f"{tmp_path} has no masks/ folder"):
        (tmp_path / "images").mkdir()
        load(str(tmp_path))
    with pytest.raises(KerastackError, match="option classes: class names must be distinct"):
        load(str(folder), classes="a,a,b")
    with pytest.raises(UsageError, match="option channels=2"):
        load(str(folder), channels=2)


def test_the_command_line_error_is_one_line(folder, tmp_path):
    (folder / "masks" / "07.png").unlink()
    proc = run_cli(
        "train", "--arch", "cnn", "--data", "mask_folder", "--data-opt", f"path={folder}", "--out", tmp_path / "run"
    )
    line = one_line_error(proc, 1)
    assert f"image {folder}/images/07.png has no mask" in line, line
