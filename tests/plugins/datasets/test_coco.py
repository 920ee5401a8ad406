"""``coco``: an instances JSON and its image folder (COCO's own layout and others), categories
renumbered in order of their ids, crowd annotations skipped, boxes that cover the drawn shapes, the
bad boxes clipped or dropped with a counted warning, and one-line errors naming the file."""

import json

import numpy as np
import pytest
from box_scenes import NAMES, coverage, scene
from conftest import one_line_error, run_cli

from core import KerastackError, PluginHost, UsageError
from plugins.datasets.coco import load

CATEGORY_IDS = (3, 7)  # COCO's ids have gaps: red is 3, blue 7


def write_coco(json_file, image_dir, n, seed, width=40, height=30, crowd=0, start_id=1):
    """``n`` scenes as images in ``image_dir`` and their instances in ``json_file``; ``crowd`` extra
    crowd annotations over the first image. Returns the parsed JSON."""
    rng = np.random.default_rng(seed)
    image_dir.mkdir(parents=True, exist_ok=True)
    json_file.parent.mkdir(parents=True, exist_ok=True)
    coco = {"info": {}, "images": [], "annotations": [], "categories": []}
    coco["categories"] = [{"id": CATEGORY_IDS[1], "name": NAMES[1]}, {"id": CATEGORY_IDS[0], "name": NAMES[0]}]
    for i in range(n):
        image, boxes = scene(rng, width, height, count=0 if i == n - 1 else None)
        name = f"{seed}_{i:03d}.{'png' if i % 2 else 'jpg'}"
        image.save(image_dir / name, quality=95)
        coco["images"].append({"id": 100 + i, "file_name": name, "width": width, "height": height})
        for cls, x0, y0, x1, y1 in boxes:
            coco["annotations"].append(
                {"id": start_id + len(coco["annotations"]), "image_id": 100 + i, "category_id": CATEGORY_IDS[cls],
                 "bbox": [x0, y0, x1 - x0, y1 - y0], "iscrowd": 0, "area": (x1 - x0) * (y1 - y0)}
            )  # fmt: skip
    for _ in range(crowd):
        coco["annotations"].append(
            {"id": start_id + len(coco["annotations"]), "image_id": 100, "category_id": 3, "bbox": [0, 0, 40, 30],
             "iscrowd": 1}
        )  # fmt: skip
    json_file.write_text(json.dumps(coco))
    return coco


@pytest.fixture
def layout(tmp_path):
    """COCO's own: annotations/instances_train2017.json with train2017/ beside annotations/."""
    root = tmp_path / "coco"
    write_coco(root / "annotations" / "instances_train2017.json", root / "train2017", 12, seed=1, crowd=2)
    return root


def test_registered_with_its_options():
    host = PluginHost(["plugins.datasets.coco"], builtins=(), entry_points=False, disabled=())
    assert host.registry("dataset").get("coco").defaults == {
        "path": "",
        "images": "",
        "test_path": "",
        "size": 64,
        "channels": 3,
        "max_boxes": 0,
        "validation": 0.15,
        "test": 0.15,
        "seed": 0,
    }


def test_boxes_cover_the_shapes_and_categories_are_renumbered(layout, capsys):
    data = load(str(layout / "annotations" / "instances_train2017.json"), size=40, validation=0.25, test=0.25)
    assert data.task == "detection" and data.class_names == NAMES  # ordered by category id: 3 red, 7 blue
    assert [len(s[0]) for s in (data.train, data.validation, data.test)] == [6, 3, 3]
    x = np.concatenate([s[0] for s in (data.train, data.validation, data.test)])
    y = np.concatenate([s[1] for s in (data.train, data.validation, data.test)])
    assert x.shape[1:] == (40, 40, 3) and y.shape[1:] == (3, 5) and y.dtype == np.float32
    assert coverage(x, y) > 0.97
    assert sorted(np.unique(y[..., 4]).tolist())[0] == -1 and set(np.unique(y[..., 4])) <= {-1, 0, 1}
    coco = json.loads((layout / "annotations" / "instances_train2017.json").read_text())
    assert (y[..., 4] >= 0).sum() == len(coco["annotations"]) - 2 and np.sum(
        np.all(y[..., 4] == -1, axis=1)
    ) == 1  # one image without objects
    err = capsys.readouterr().err
    assert f"coco: skipped 2 crowd annotations (iscrowd 1) of {layout}/annotations/instances_train2017.json" in err
    assert "warning" not in err


def test_a_test_json_and_other_image_folders(tmp_path):
    root = tmp_path / "d"
    write_coco(root / "train.json", root / "pictures", 8, seed=2)
    with pytest.raises(KerastackError, match=r"image '2_000.jpg' is in none of .*; give --data-opt images=DIR"):
        load(str(root / "train.json"))
    write_coco(root / "val" / "instances_val.json", root / "val" / "images", 4, seed=3)
    data = load(str(root / "train.json"), images=str(root / "pictures"), test_path=str(root / "val" / "instances_val.json"),
                size=24, validation=0.25)  # fmt: skip
    assert [len(s[0]) for s in (data.train, data.validation, data.test)] == [6, 2, 4]
    assert coverage(*data.test) > 0.95
    other = json.loads((root / "val" / "instances_val.json").read_text())
    other["categories"][0]["name"] = "green"
    (root / "val" / "instances_val.json").write_text(json.dumps(other))
    with pytest.raises(KerastackError, match="its categories differ from those of option path's JSON"):
        load(
            str(root / "train.json"), images=str(root / "pictures"), test_path=str(root / "val" / "instances_val.json")
        )


def test_bad_boxes_are_fixed_and_counted(tmp_path, capsys):
    file = tmp_path / "instances.json"
    coco = write_coco(file, tmp_path, 4, seed=4)
    n = len(coco["annotations"])
    coco["annotations"] += [
        {"id": 901, "image_id": 100, "category_id": 3, "bbox": [30, 10, 20, 10]},  # past the right edge: clipped
        {"id": 902, "image_id": 100, "category_id": 7, "bbox": [5, 5, 0, 10]},  # zero width: dropped
        {"id": 903, "image_id": 101, "category_id": 7, "bbox": [50, 40, 5, 5]},  # wholly outside: dropped
        {"id": 904, "image_id": 101, "category_id": 7, "bbox": [5, 5, 10, -3]},  # negative height: dropped
    ]
    file.write_text(json.dumps(coco))
    y = load(str(file), validation=0, test=0).train[1]
    err = capsys.readouterr().err
    total = n + 4
    assert (
        f"coco: warning: 2 of {total} boxes have zero or negative area: dropped (the first: {file} annotation 902)"
        in err
    )
    assert (
        f"coco: warning: 1 of {total} boxes lie wholly outside their image: dropped (the first: {file} annotation 903)"
        in err
    )
    assert (
        f"coco: warning: 1 of {total} boxes reach outside their image: clipped to it (the first: {file} annotation 901)"
        in err
    )
    assert np.any(np.all(np.abs(y[0] - [0.75, 10 / 30, 1.0, 20 / 30, 0]) < 1e-6, axis=1)), y[0]  # the clipped box


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda c: c["annotations"][1].update(category_id=5),
            "{file} annotation 2: category_id 5 is not one of the categories (3: red, 7: blue)",
        ),
        (
            lambda c: c["annotations"][0].update(image_id=999),
            "{file} annotation 1: image_id 999 is not one of the 3 images",
        ),
        (
            lambda c: c["annotations"][0].update(bbox=[1, 2, 3]),
            "{file} annotation 1: bbox [1, 2, 3] is not [x, y, width, height] (four numbers, in pixels)",
        ),
        (
            lambda c: c["images"][1].update(width=41),
            "{file}: image {root}/3_001.png is 40x30 but the JSON says 41x30 (its boxes are in those pixels)",
        ),
        (
            lambda c: c.pop("categories"),
            "{file} is not COCO instances: expected lists 'images', 'annotations' and 'categories' (it has info, images, annotations)",
        ),
        (
            lambda c: c["categories"].append({"id": 9, "name": "red"}),
            "{file}: categories must have distinct ids and distinct, non-empty names (3: red, 7: blue, 9: red)",
        ),
        (lambda c: c["images"][0].update(file_name="3_000.png"), "{file}: image '3_000.png' is in none of"),
    ],
)
def test_bad_instances_are_errors_naming_the_file(tmp_path, change, message):
    file = tmp_path / "instances.json"
    coco = write_coco(file, tmp_path, 3, seed=3)
    change(coco)
    file.write_text(json.dumps(coco))
    with pytest.raises(KerastackError) as error:
        load(str(file))
    assert str(error.value).startswith("dataset 'coco': " + message.format(file=file, root=tmp_path)), str(error.value)


def test_bad_files_and_options(tmp_path):
    with pytest.raises(UsageError, match="option path is not set"):
        load()
    (tmp_path / "broken.json").write_text('{"images": [\n  1,\n')
    with pytest.raises(KerastackError, match=f"{tmp_path / 'broken.json'} line 3: not JSON"):
        load(str(tmp_path / "broken.json"))
    with pytest.raises(UsageError, match="option size=2"):
        load(str(tmp_path / "broken.json"), size=2)


def test_the_command_line_error_is_one_line(tmp_path, layout):
    file = layout / "annotations" / "instances_train2017.json"
    coco = json.loads(file.read_text())
    coco["annotations"][3]["category_id"] = 1
    file.write_text(json.dumps(coco))
    proc = run_cli("train", "--arch", "cnn", "--data", "coco", "--data-opt", f"path={file}", "--out", tmp_path / "r")
    line = one_line_error(proc, 1)
    assert f"{file} annotation 4: category_id 1 is not one of the categories (3: red, 7: blue)" in line, line
