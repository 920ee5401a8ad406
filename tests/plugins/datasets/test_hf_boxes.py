"""``hf`` with ``boxes``: box features of a local parquet file in both of datasets' layouts (a
struct of lists, a list of structs), pixel and relative formats, classes from the ClassLabel or
given; bad boxes counted, bad classes and options one-line errors naming the row."""

import os

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")  # before `datasets` is imported: never the network

import numpy as np
import pytest
from box_scenes import NAMES, coverage, scene

from core import KerastackError, UsageError
from plugins.datasets.hf import load


def write_parquet(path, n=16, seed=0, layout="struct", box_format="xywh", label=True, edit=None):
    """``n`` scenes (40x30) and their boxes in column ``objects`` (``bbox`` and ``category``);
    ``edit(objects)`` changes the per-row records before they are written."""
    import datasets

    rng = np.random.default_rng(seed)
    images, objects = [], []
    for _ in range(n):
        image, boxes = scene(rng, 40, 30)
        images.append(image)
        if box_format == "xywh":
            coords = [[x0, y0, x1 - x0, y1 - y0] for _, x0, y0, x1, y1 in boxes]
        else:  # rel_xyxy
            coords = [[x0 / 40, y0 / 30, x1 / 40, y1 / 30] for _, x0, y0, x1, y1 in boxes]
        objects.append({"bbox": coords, "category": [c for c, *_ in boxes]})
    if edit:
        edit(objects)
    category = datasets.ClassLabel(names=list(NAMES)) if label else datasets.Value("int64")
    box = datasets.List(datasets.Value("float32"), length=4)
    if layout == "struct":  # datasets' Sequence of a dict: a struct of lists
        feature = {"bbox": datasets.List(box), "category": datasets.List(category)}
    else:
        feature = datasets.List({"bbox": box, "category": category})
        objects = [[{"bbox": b, "category": c} for b, c in zip(o["bbox"], o["category"])] for o in objects]
    features = datasets.Features({"image": datasets.Image(), "objects": feature})
    datasets.Dataset.from_dict({"image": images, "objects": objects}, features=features).to_parquet(str(path))
    return str(path)


def batches(split):
    x, y = zip(*(split[i] for i in range(len(split))))
    return np.concatenate(x), np.concatenate(y)


@pytest.mark.parametrize("layout, box_format", [("struct", "xywh"), ("list", "rel_xyxy")])
def test_boxes_cover_the_shapes(tmp_path, layout, box_format):
    name = write_parquet(tmp_path / "d.parquet", layout=layout, box_format=box_format)
    data = load(name, boxes="objects/bbox", box_format=box_format, size=40, batch_size=4, validation=0.25, test=0.25)
    assert data.task == "detection" and data.class_names == NAMES
    assert [len(s) for s in (data.train, data.validation, data.test)] == [2, 1, 1]
    x, y = batches(data.train)
    assert x.shape == (8, 40, 40, 3) and y.dtype == np.float32 and y.shape[1:] == (3, 5)
    assert coverage(x, y) > 0.97 and coverage(*batches(data.test)) > 0.97


def test_classes_without_a_class_label(tmp_path):
    name = write_parquet(tmp_path / "d.parquet", label=False)
    assert load(name, boxes="objects/bbox").class_names == ("0", "1")  # the ids found
    assert load(name, boxes="objects/bbox", classes="red,blue,green").class_names == ("red", "blue", "green")
    with pytest.raises(KerastackError, match=r"row \d+ of .* box \d: class 1 is not one of the classes: 0..0 \(red\)"):
        load(name, boxes="objects/bbox", classes="red")


def test_bad_boxes_are_counted_and_bad_rows_named(tmp_path, capsys):
    def edit(objects):
        objects[2]["bbox"].append([35, 10, 10, 10])  # past the right edge: clipped
        objects[2]["category"].append(1)
        objects[3]["bbox"].append([5, 5, 0, 10])  # zero width: dropped
        objects[3]["category"].append(0)

    name = write_parquet(tmp_path / "d.parquet", edit=edit)
    load(name, boxes="objects/bbox", validation=0, test=0)
    err = capsys.readouterr().err
    assert (
        "hf: warning: 1 of " in err
        and f"boxes reach outside their image: clipped to it (the first: row 2 of {name} train, box" in err
    )
    assert f"boxes have zero or negative area: dropped (the first: row 3 of {name} train, box" in err

    def broken(objects):
        objects[1]["bbox"][0] = [1.0, 2.0, float("nan"), 4.0]

    name = write_parquet(tmp_path / "e.parquet", edit=broken)
    with pytest.raises(KerastackError, match=rf"row 1 of {name} train, box 0: \[1.0, 2.0, nan, 4.0\] is not a box"):
        load(name, boxes="objects/bbox")


def test_bad_options(tmp_path):
    name = write_parquet(tmp_path / "d.parquet", n=4)
    with pytest.raises(
        UsageError,
        match=r"option box_format='cxcywh': no such Keras bounding-box format \(did you mean 'xywh'\?\); valid: center_xywh",
    ):
        load(name, boxes="objects/bbox", box_format="cxcywh")
    with pytest.raises(
        UsageError,
        match=r"option boxes='objects/box': column 'objects' of .* has no field 'box' \(did you mean 'bbox'\?\); its fields: bbox, category",
    ):
        load(name, boxes="objects/box")
    with pytest.raises(
        UsageError, match=r"column 'objects' of .* holds fields \(bbox, category\); give --data-opt boxes=objects/FIELD"
    ):
        load(name, boxes="objects")
    with pytest.raises(UsageError, match="options mask='image' and boxes='objects/bbox': give one of them"):
        load(name, boxes="objects/bbox", mask="image")
