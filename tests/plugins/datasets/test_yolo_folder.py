"""``yolo_folder``: Ultralytics' layouts (split folders, a flat folder, Roboflow's export, list
files), class names from data.yaml or a names file, boxes that cover the drawn shapes, and the bad
boxes: clipped or dropped with a counted warning, or a one-line error naming the file and line."""

import numpy as np
import pytest
from box_scenes import NAMES, coverage, scene, yolo_line
from conftest import one_line_error, run_cli

from core import KerastackError, PluginHost, UsageError
from plugins.datasets.yolo_folder import load


def write_split(root, images, labels, n, seed, width=40, height=30, empty_every=0):
    """``n`` scenes as PNG/JPEG files in ``images`` with their label files in ``labels``."""
    rng = np.random.default_rng(seed)
    images.mkdir(parents=True, exist_ok=True)
    labels.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        image, boxes = scene(rng, width, height, count=0 if empty_every and i % empty_every == 0 else None)
        image.save(images / f"{seed}_{i:02d}.{'png' if i % 3 else 'jpg'}", quality=95)
        (labels / f"{seed}_{i:02d}.txt").write_text("".join(yolo_line(b, width, height) + "\n" for b in boxes))


@pytest.fixture
def ultralytics(tmp_path):
    """images/{train,val} and labels/{train,val} with a data.yaml naming the classes by id."""
    root = tmp_path / "data"
    write_split(root, root / "images" / "train", root / "labels" / "train", 8, seed=1, empty_every=4)
    write_split(root, root / "images" / "val", root / "labels" / "val", 4, seed=2)
    (root / "data.yaml").write_text(
        "path: ../datasets/data  # Ultralytics' datasets folder: not here\ntrain: images/train\nval: images/val\n"
        "names:\n  0: red\n  1: blue\n"
    )
    return root


def test_registered_with_its_options():
    host = PluginHost(["plugins.datasets.yolo_folder"], builtins=(), entry_points=False, disabled=())
    assert host.registry("dataset").get("yolo_folder").defaults == {
        "path": "",
        "classes": "",
        "size": 64,
        "channels": 3,
        "max_boxes": 0,
        "validation": 0.15,
        "test": 0.15,
        "seed": 0,
    }


def test_split_folders_and_yaml_names(ultralytics, capsys):
    data = load(str(ultralytics), size=40)
    assert data.task == "detection" and data.class_names == NAMES
    assert data.test is None and [len(s[0]) for s in (data.train, data.validation)] == [8, 4]
    for x, y in (data.train, data.validation):
        assert x.shape[1:] == (40, 40, 3) and x.dtype == np.float32 and y.dtype == np.float32
        assert y.shape[2] == 5 and y.shape[1] == 3  # the most boxes in one image
        assert coverage(x, y) > 0.97
        padding = y[..., 4] == -1
        assert np.all(y[padding][:, :4] == 0) and np.all(y[~padding][:, :4] >= 0) and np.all(y[~padding][:, :4] <= 1)
    assert np.all(data.train[1][0, :, 4] == -1)  # an empty label file: an image without objects
    assert "warning" not in capsys.readouterr().err
    # The yaml as path, the same dataset; a list of ids and grayscale
    same = load(str(ultralytics / "data.yaml"), size=40)
    np.testing.assert_array_equal(same.validation[1], data.validation[1])
    (ultralytics / "data.yaml").write_text("train: images/train\nval: images/val\nnames: [red, blue]\n")
    assert load(str(ultralytics), size=16, channels=1).train[0].shape[1:] == (16, 16, 1)


def test_flat_folder_names_file_and_shares(tmp_path):
    root = tmp_path / "flat"
    write_split(root, root / "images", root / "labels", 20, seed=3)
    (root / "classes.txt").write_text("red\nblue\n")
    data = load(str(root), size=32, validation=0.2, test=0.2, seed=5)
    assert data.class_names == NAMES
    assert [len(s[0]) for s in (data.train, data.validation, data.test)] == [12, 4, 4]
    assert coverage(*data.test) > 0.97
    again = load(str(root), size=32, validation=0.2, test=0.2, seed=5)
    np.testing.assert_array_equal(again.test[1], data.test[1])
    assert load(str(root), classes="a,b,c").class_names == ("a", "b", "c")
    (root / "classes.txt").unlink()
    assert load(str(root)).class_names == ("0", "1")  # the ids found


def test_roboflow_export_and_list_files(tmp_path):
    root = tmp_path / "robo"
    for split, seed in (("train", 4), ("valid", 5), ("test", 6)):
        write_split(root, root / split / "images", root / split / "labels", 3, seed=seed)
    # Roboflow's yaml lies beside the split folders but says ../train/images
    (root / "data.yaml").write_text(
        "train: ../train/images\nval: ../valid/images\ntest: ../test/images\nnc: 2\nnames: ['red', 'blue']\n"
    )
    data = load(str(root), size=24)
    assert [len(s[0]) for s in (data.train, data.validation, data.test)] == [3, 3, 3]
    assert coverage(*data.train) > 0.95
    (root / "train.txt").write_text(
        "".join(f"train/images/{p.name}\n" for p in sorted((root / "train/images").iterdir())[:2])
    )
    (root / "data.yaml").write_text("train: train.txt\nval: valid/images\nnames: {0: red, 1: blue}\n")
    data = load(str(root), size=24)
    assert [len(s[0]) for s in (data.train, data.validation)] == [2, 3] and data.test is None
    # Without a yaml, the train/images + valid/images folders are found
    (root / "data.yaml").unlink()
    assert [len(load(str(root), size=24).split(s)[0]) for s in ("train", "validation", "test")] == [3, 3, 3]


def test_bad_boxes_are_fixed_and_counted(tmp_path, capsys):
    root = tmp_path / "bad"
    write_split(root, root / "images", root / "labels", 6, seed=7)
    label = root / "labels" / "7_01.txt"
    label.write_text(
        "0 0.95 0.5 0.3 0.2\n"  # reaches past the right edge: clipped
        "1 0.5 0.5 0.0 0.2\n"  # zero width: dropped
        "1 1.5 0.5 0.2 0.2\n"  # wholly outside: dropped
        "0 0.5 -0.05 0.2 0.2\n"  # past the top: clipped
        "0 0.5 0.5 0.2 -0.1\n"  # negative height: dropped
    )
    (root / "labels" / "7_02.txt").write_text("")
    (root / "labels" / "7_03.txt").unlink()
    data = load(str(root), classes="red,blue", validation=0, test=0)
    err = capsys.readouterr().err
    n = sum(len(f.read_text().splitlines()) for f in (root / "labels").iterdir())
    assert (
        f"yolo_folder: warning: 2 of {n} boxes have zero or negative area: dropped (the first: {label} line 2)" in err
    )
    assert (
        f"yolo_folder: warning: 1 of {n} boxes lie wholly outside their image: dropped (the first: {label} line 3)"
        in err
    )
    assert (
        f"yolo_folder: warning: 2 of {n} boxes reach outside their image: clipped to it (the first: {label} line 1)"
        in err
    )
    assert f"yolo_folder: 1 of 6 images have no label file (the first: {root / 'labels' / '7_03.txt'})" in err
    x, y = data.train
    np.testing.assert_allclose(y[1, :2], [[0.8, 0.4, 1.0, 0.6, 0], [0.4, 0.0, 0.6, 0.05, 0]], atol=1e-6)
    assert np.all(y[1, 2:, 4] == -1) and np.all(y[2, :, 4] == -1) and np.all(y[3, :, 4] == -1)
    # max_boxes: the largest boxes of an image with more
    big = load(str(root), classes="red,blue", validation=0, test=0, max_boxes=1)
    assert big.train[1].shape[1] == 1 and "hold more than max_boxes=1 boxes" in capsys.readouterr().err
    np.testing.assert_allclose(big.train[1][1, 0], [0.8, 0.4, 1.0, 0.6, 0], atol=1e-6)


@pytest.mark.parametrize(
    "line, message",
    [
        (
            "0 0.5 0.5 0.2",
            "{file} line 2: 4 fields; expected 'class cx cy w h' (5), or 'class x1 y1 x2 y2 ...' (a polygon): '0 0.5 0.5 0.2'",
        ),
        ("0 0.5 x 0.2 0.2", "{file} line 2: not numbers: '0 0.5 x 0.2 0.2'"),
        ("1.5 0.5 0.5 0.2 0.2", "{file} line 2: class '1.5' is not a class id (an integer from 0)"),
        ("2 0.5 0.5 0.2 0.2", "{file} line 2: class 2 is not one of the 2 classes (red, blue: 0..1)"),
        ("0 0.5 nan 0.2 0.2", "{file} line 2: not finite numbers: '0 0.5 nan 0.2 0.2'"),
    ],
)
def test_bad_lines_are_errors_naming_file_and_line(tmp_path, line, message):
    root = tmp_path / "d"
    write_split(root, root / "images", root / "labels", 4, seed=8)
    file = root / "labels" / "8_02.txt"
    file.write_text("0 0.5 0.5 0.2 0.2\n" + line + "\n")
    (root / "classes.txt").write_text("red\nblue\n")
    with pytest.raises(KerastackError) as error:
        load(str(root))
    assert str(error.value) == "dataset 'yolo_folder': " + message.format(file=file)


def test_a_polygon_line_is_the_box_around_it(tmp_path):
    root = tmp_path / "poly"
    write_split(root, root / "images", root / "labels", 3, seed=9)
    (root / "labels" / "9_00.txt").write_text("1 0.2 0.1 0.6 0.3 0.4 0.7\n")
    y = load(str(root), classes="red,blue", validation=0, test=0).train[1]
    np.testing.assert_allclose(y[0, 0], [0.2, 0.1, 0.6, 0.7, 1], atol=1e-6)


def test_bad_folders_and_yaml(tmp_path, ultralytics):
    with pytest.raises(UsageError, match="option path is not set"):
        load()
    with pytest.raises(UsageError, match="no such file or folder"):
        load(str(tmp_path / "nowhere"))
    (ultralytics / "data.yaml").write_text("train: images/train\nnames: [red, blue\n")
    with pytest.raises(KerastackError, match=f"{ultralytics / 'data.yaml'} line 3: not YAML"):
        load(str(ultralytics))
    (ultralytics / "data.yaml").write_text("train: images/training\nnames: [red, red]\n")
    with pytest.raises(KerastackError, match="names: class names must be distinct"):
        load(str(ultralytics))
    (ultralytics / "data.yaml").write_text("train: images/training\nnames: {0: red, 2: blue}\n")
    with pytest.raises(KerastackError, match=r"names: ids must run 0..1 without gaps, got \[0, 2\]"):
        load(str(ultralytics))
    (ultralytics / "data.yaml").write_text("train: images/training\n")
    with pytest.raises(KerastackError, match=f"the train split's {ultralytics}/images/training: no such folder"):
        load(str(ultralytics))
    empty = tmp_path / "empty"
    (empty / "images").mkdir(parents=True)
    from PIL import Image

    Image.new("RGB", (8, 8)).save(empty / "images" / "a.png")
    with pytest.raises(KerastackError, match=f"no label file for any of the 1 images: expected {empty}/labels/a.txt"):
        load(str(empty))
    with pytest.raises(UsageError, match="option max_boxes=-1"):
        load(str(ultralytics), max_boxes=-1)


def test_the_command_line_error_is_one_line(tmp_path, ultralytics):
    file = ultralytics / "labels" / "train" / "1_03.txt"
    file.write_text("0 0.5 0.5 0.2 0.2\n7 0.5 0.5 0.2 0.2\n")
    proc = run_cli(
        "train", "--arch", "cnn", "--data", "yolo_folder", "--data-opt", f"path={ultralytics}", "--out", tmp_path / "r"
    )
    line = one_line_error(proc, 1)
    assert f"{file} line 2: class 7 is not one of the 2 classes (red, blue: 0..1)" in line, line
