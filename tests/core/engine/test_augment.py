"""``--augment`` on segmentation data: each mask moves exactly with its image, and stays classes."""

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
json.dump(report, open(sys.argv[1] + "/report.json", "w"))
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_masks_move_with_their_images(tmp_path, backend):
    run_python(JOB, tmp_path, env={"KERAS_BACKEND": backend})
    r = read_json(tmp_path / "report.json")
    assert r["flip_dtype"] == "int32" and r["warp_dtype"] == "int32", r
    assert r["mask_flipped"] == r["flipped"] and r["mask_kept"] == r["kept"], r
    assert all(f or k for f, k in zip(r["flipped"], r["kept"])) and 0 < sum(r["flipped"]) < 24, r
    assert set(r["warp_classes"]) <= {0, 1, 2}, r  # nearest: no class blended into another
    assert r["warp_agreement"] > 0.9 and r["warp_changed"] > 0.05, r
