"""``--augment`` on segmentation and detection data: each mask moves exactly with its image, and
stays classes; each image's boxes move with it and still cover the drawn shapes."""

import pytest
from conftest import read_json, run_python

from core.backend import BACKENDS

JOB = """
import json, sys
import numpy as np
from core.engine.augment import augmented

rng = np.random.default_rng(0)
masks = np.zeros((24, 16, 16), "int32")
for i in range(24):  # a rectangle of class 1 or 2 somewhere left of centre: flips show
    top, left = rng.integers(0, 8, 2)
    masks[i, top : top + 6, left : left + 5] = 1 + i % 2
x = (masks[..., None] / 2).astype("float32")  # each class its own brightness: 0, 0.5, 1

def batches(names):
    # The augmented images and masks of one epoch, and the rows of x they came from.
    data = augmented(x, masks, 8, names, seed=3)
    got = [data[i] for i in range(len(data))]
    rows = np.concatenate([np.sort(data.order[i * 8 : (i + 1) * 8]) for i in range(len(data))])
    return np.concatenate([b[0] for b in got]), np.concatenate([b[1] for b in got]), rows

report = {}
images, moved, rows = batches(("flip",))
report["flip_dtype"] = str(moved.dtype)
report["flipped"] = [bool(np.array_equal(images[j, :, :, 0], x[r, :, ::-1, 0])) for j, r in enumerate(rows)]
report["kept"] = [bool(np.array_equal(images[j, :, :, 0], x[r, :, :, 0])) for j, r in enumerate(rows)]
report["mask_flipped"] = [bool(np.array_equal(moved[j], masks[r, :, ::-1])) for j, r in enumerate(rows)]
report["mask_kept"] = [bool(np.array_equal(moved[j], masks[r])) for j, r in enumerate(rows)]

images, moved, rows = batches(("rotate", "zoom", "translate"))
report["warp_classes"] = sorted(int(c) for c in np.unique(moved))
report["warp_dtype"] = str(moved.dtype)
# Bilinear images vs nearest masks differ only along edges: the brightness says the class elsewhere.
report["warp_agreement"] = float(np.mean(np.rint(images[..., 0] * 2) == moved))
report["warp_changed"] = float(np.mean(moved != masks[rows]))

# Boxes: one or two rectangles an image, of brightness 0.5 (class 0) or 1 (class 1), rel_xyxy, padded to 3.
n, side = 24, 32
shapes = np.zeros((n, side, side, 1), "float32")
boxes = np.zeros((n, 3, 5), "float32")
boxes[..., 4] = -1
for i in range(n):
    for j in range(1 + i % 2):  # side by side, a few pixels apart
        top, left = rng.integers(2, 18), 2 + 15 * j + rng.integers(0, 4)
        h, w = rng.integers(5, 12), rng.integers(5, 10)
        shapes[i, top : top + h, left : left + w, 0] = 0.5 + 0.5 * ((i + j) % 2)
        boxes[i, j] = [left / side, top / side, (left + w) / side, (top + h) / side, (i + j) % 2]
centres = (np.arange(side) + 0.5) / side

def box_facts(images, moved):
    # The share of shape pixels inside a box (give or take half a pixel), the share of box area that is shape, and the share of
    # boxes whose pixels have their class's brightness.
    inside = shape = filled = area = agree = count = 0
    for image, rows in zip(images[..., 0], moved):
        lit = image > 0.25
        covered = np.zeros_like(lit)
        for x0, y0, x1, y1, c in rows[rows[:, 4] >= 0]:
            box = (centres[None, :] >= x0) & (centres[None, :] <= x1) & (centres[:, None] >= y0) & (centres[:, None] <= y1)
            e = 0.5 / side  # resampling blurs an edge over a pixel: half a pixel of slack
            covered |= (centres[None, :] >= x0 - e) & (centres[None, :] <= x1 + e) & (centres[:, None] >= y0 - e) & (
                centres[:, None] <= y1 + e
            )
            filled, area = filled + (lit & box).sum(), area + box.sum()
            agree += int(np.rint(np.median(image[lit & box]) * 2) == c + 1) if (lit & box).any() else 0
            count += 1
        inside, shape = inside + (lit & covered).sum(), shape + lit.sum()
    return {"coverage": inside / shape, "fill": filled / area, "class_agreement": agree / count, "boxes": count}

data = augmented(shapes, boxes, 8, ("flip",), seed=3)
got = [data[i] for i in range(len(data))]
rows = np.concatenate([np.sort(data.order[i * 8 : (i + 1) * 8]) for i in range(len(data))])
images, moved = np.concatenate([b[0] for b in got]), np.concatenate([b[1] for b in got])
flipped = np.array([np.array_equal(images[j], shapes[r, :, ::-1]) for j, r in enumerate(rows)])
mirror = boxes[rows][..., [2, 1, 0, 3, 4]] * [-1, 1, -1, 1, 1] + [1, 0, 1, 0, 0]
expected = np.where(flipped[:, None, None], np.where(boxes[rows][..., 4:] >= 0, mirror, boxes[rows]), boxes[rows])
report["box_flip"] = {"dtype": str(moved.dtype), "flipped": int(flipped.sum()),
                      "max_error": float(np.abs(moved - expected).max()), **box_facts(images, moved)}
report["box_start"] = box_facts(shapes, boxes)
for names in (("rotate",), ("zoom",), ("translate",), ("flip", "rotate", "zoom", "translate")):
    data = augmented(shapes, boxes, 8, names, seed=5)
    got = [data[i] for i in range(len(data))]
    images, moved = np.concatenate([b[0] for b in got]), np.concatenate([b[1] for b in got])
    padding = moved[..., 4] < 0
    report["box_" + "+".join(names)] = {
        "changed": float(np.mean(np.abs(images - shapes[np.concatenate([np.sort(data.order[i * 8 : (i + 1) * 8]) for i in range(len(data))])]) > 0.1)),
        "padding_zero": bool(np.all(moved[padding][:, :4] == 0)),
        "in_range": bool(np.all((moved[..., :4] >= 0) & (moved[..., :4] <= 1))),
        **box_facts(images, moved),
    }
json.dump(report, open(sys.argv[1] + "/report.json", "w"))
"""


@pytest.fixture(scope="module", params=BACKENDS)
def report(request, tmp_path_factory):
    """One process per backend: masks and boxes through every augmentation."""
    out = tmp_path_factory.mktemp(f"augment-{request.param}")
    run_python(JOB, out, env={"KERAS_BACKEND": request.param})
    return read_json(out / "report.json")


def test_masks_move_with_their_images(report):
    r = report
    assert r["flip_dtype"] == "int32" and r["warp_dtype"] == "int32", r
    assert r["mask_flipped"] == r["flipped"] and r["mask_kept"] == r["kept"], r
    assert all(f or k for f, k in zip(r["flipped"], r["kept"])) and 0 < sum(r["flipped"]) < 24, r
    assert set(r["warp_classes"]) <= {0, 1, 2}, r  # nearest: no class blended into another
    assert r["warp_agreement"] > 0.9 and r["warp_changed"] > 0.05, r


def test_boxes_move_with_their_images(report):
    start, flip = report["box_start"], report["box_flip"]
    assert start["coverage"] == 1 and start["fill"] == 1 and start["class_agreement"] == 1, start
    assert flip["dtype"] == "float32" and 0 < flip["flipped"] < 24 and flip["max_error"] < 1e-6, flip
    assert flip["coverage"] == 1 and flip["fill"] == 1, flip
    for names in ("rotate", "zoom", "translate", "flip+rotate+zoom+translate"):
        r = report["box_" + names]
        assert r["changed"] > 0.02 and r["padding_zero"] and r["in_range"], (names, r)
        # The boxes cover the moved shapes (edges blur in the resampling) and stay tight; a rotated
        # rectangle's box is the box around its corners, so looser.
        assert r["coverage"] > 0.99 and r["fill"] > (0.6 if "rotate" in names else 0.8), (names, r)
        assert r["class_agreement"] > 0.95 and r["boxes"] >= 0.9 * start["boxes"], (names, r)
