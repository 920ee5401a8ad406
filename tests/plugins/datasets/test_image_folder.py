"""``image_folder``: class subfolders streamed as PyDatasets — shapes, classes, shuffling, errors.

The PyDataset checks import keras, so they run in one subprocess; errors come before keras is
imported and are checked here.
"""

import json
import re

import numpy as np
import pytest
from conftest import one_line_error, run_cli, run_python
from PIL import Image

from core import KerastackError, PluginHost, UsageError
from plugins.datasets.image_folder import load

JAX = {"KERAS_BACKEND": "jax"}  # imports fastest; these checks do not depend on the backend


def write_images(root, per_class=10, classes=("bright", "dark"), seed=0):
    """Images of varied sizes, modes and formats: ``bright`` ones light, ``dark`` ones dark."""
    rng = np.random.default_rng(seed)
    for c, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            level = 200 if c == 0 else 40
            pixels = np.clip(rng.normal(level, 20, (12 + i, 20 - i, 3)), 0, 255).astype("uint8")
            image = Image.fromarray(pixels)
            if i % 3 == 0:
                image.save(folder / f"{i:02d}.jpg", quality=90)
            elif i % 3 == 1:
                image.convert("L").save(folder / f"{i:02d}.png")
            else:
                image.convert("RGBA").save(folder / f"{i:02d}.PNG")
    (root / classes[0] / "notes.txt").write_text("not an image: ignored")
    return root


def test_registered_with_its_options():
    host = PluginHost(["plugins.datasets.image_folder"], builtins=(), entry_points=False, disabled=())
    assert host.registry("dataset").get("image_folder").defaults == {
        "path": "",
        "size": 32,
        "channels": 3,
        "batch_size": 32,
        "validation": 0.15,
        "test": 0.15,
        "seed": 0,
    }


STREAMING = """
import json, sys
from pathlib import Path
import PIL.Image
from core.data import as_arrays, spec_of
from plugins.datasets.image_folder import load

root = sys.argv[1]
data = load(root, size=16, batch_size=4, seed=1)
facts = {"class_names": data.class_names, "spec": repr(spec_of(data)),
         "files": [len(s.paths) for s in (data.train, data.validation, data.test)],
         "batches": [len(s) for s in (data.train, data.validation, data.test)]}
x, y = data.train[0]
facts["batch"] = [list(x.shape), str(x.dtype), float(x.min()), float(x.max()), list(y.shape), str(y.dtype)]
facts["last_batch"] = list(data.train[len(data.train) - 1][0].shape)
facts["labels_match_folders"] = all(data.class_names[label] == Path(p).parent.name
                                    for s in (data.train, data.validation, data.test)
                                    for p, label in zip(s.paths, s.labels))

# Only the files of the batch asked for are opened.
opened, real_open = [], PIL.Image.open
PIL.Image.open = lambda f, *a, **k: opened.append(str(f)) or real_open(f, *a, **k)
data.train[1]
facts["opened_for_one_batch"] = len(opened)
order = [data.train.paths[i] for i in data.train.order]
facts["batch_1_files"] = sorted(opened) == sorted(map(str, order[4:8]))
x_test, y_test = as_arrays(data.test)
facts["test_arrays"] = [list(x_test.shape), y_test.tolist()]
PIL.Image.open = real_open

# The train split is read in a new order every epoch; the others keep theirs.
val_order = data.validation.order.copy()
data.train.on_epoch_end(); data.validation.on_epoch_end()
second = [data.train.paths[i] for i in data.train.order]
facts["train_reshuffled"] = second != order and sorted(second) == sorted(order)
facts["validation_kept"] = data.validation.order.tolist() == val_order.tolist()
again = load(root, size=16, batch_size=4, seed=1)
facts["same_seed_same_order"] = [again.train.paths[i] for i in again.train.order] == order
facts["grayscale"] = list(load(root, size=8, channels=1).test[0][0].shape)

# A file damaged after load is named when its batch is read.
victim = data.test.paths[data.test.order[0]]
Path(victim).write_bytes(b"garbage")
try:
    data.test[0]
except Exception as exc:
    facts["damaged"] = [type(exc).__name__, str(exc), str(victim)]

# Photos larger than the default size: said once (issue 23: the README promised "your images' size").
big = Path(root).parent / "big"
for c in "ab":
    (big / c).mkdir(parents=True)
    for i in range(4):
        PIL.Image.new("RGB", (64 + i, 48)).save(big / c / f"{i}.png")
load(str(big), size=48)
print("-- size 48 above, the default below --", file=sys.stderr)
facts["default_size"] = list(load(str(big)).test[0][0].shape)
print(json.dumps(facts))
"""


def test_splits_stream_batches_of_images_from_the_class_folders(tmp_path):
    root = write_images(tmp_path / "images", per_class=13)
    proc = run_python(STREAMING, root, env=JAX)
    facts = json.loads(proc.stdout.strip().splitlines()[-1])
    assert facts["class_names"] == ["bright", "dark"]
    assert "input_shape=(16, 16, 3), num_classes=2" in facts["spec"]
    assert facts["files"] == [18, 4, 4] and facts["batches"] == [5, 1, 1]  # 26 images, stratified
    shape, dtype, low, high, y_shape, y_dtype = facts["batch"]
    assert (shape, dtype, y_shape, y_dtype) == ([4, 16, 16, 3], "float32", [4], "int32")
    assert 0 <= low < high <= 1
    assert facts["last_batch"] == [2, 16, 16, 3]  # 18 = 4 * 4 + 2
    assert facts["labels_match_folders"]
    assert facts["opened_for_one_batch"] == 4 and facts["batch_1_files"]
    assert facts["test_arrays"] == [[4, 16, 16, 3], [0, 0, 1, 1]]
    assert facts["train_reshuffled"] and facts["validation_kept"] and facts["same_seed_same_order"]
    assert facts["grayscale"] == [4, 8, 8, 1]
    kind, message, victim = facts["damaged"]
    assert kind == "KerastackError" and "\n" not in message
    assert message.startswith(f"dataset 'image_folder': cannot read image {victim}: ")
    assert facts["default_size"] == [1, 32, 32, 3]
    given, default = proc.stderr.split("-- size 48 above, the default below --")
    assert "image_folder: warning" not in given  # this file's small images, or size given: nothing to say
    warned = [line for line in default.splitlines() if "image_folder: warning" in line]
    assert warned == [
        "image_folder: warning: images of up to 67x48 are resized to 32x32, the default size; give "
        "--data-opt size=N to keep more of them (ImageNet backbones were trained at 224)"
    ]


def error(exc_type, path="", **options):
    with pytest.raises(exc_type) as info:
        load(str(path), **options)
    message = str(info.value)
    assert "\n" not in message and message.startswith("dataset 'image_folder': ")
    return message


def test_errors_name_the_option_the_folder_or_the_file(tmp_path):
    assert "option path is not set; give the folder of class subfolders" in error(UsageError)
    none, file, flat = tmp_path / "none", tmp_path / "file.png", tmp_path / "flat"
    assert f"option path={str(none)!r}: no such folder" in error(UsageError, none)
    file.write_bytes(b"")
    assert "is a file, expected a folder of class subfolders" in error(UsageError, file)
    flat.mkdir()
    assert f"{flat} has no class subfolders; expected {flat}/CLASS/IMAGE.png" in error(UsageError, flat)
    root = write_images(tmp_path / "one", per_class=3, classes=("cat",))
    assert "has 1 class subfolder ('cat'); classification needs at least 2" in error(UsageError, root)
    (root / "dog").mkdir()
    (root / "dog" / "readme.txt").write_text("no images here")
    assert f"class folder {root / 'dog'} holds no .png/.jpg/.jpeg images" in error(UsageError, root)
    Image.new("RGB", (4, 4)).save(root / "dog" / "a.gif")  # not a .png/.jpg/.jpeg: ignored
    broken = root / "dog" / "b.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n broken")
    assert f"cannot read image {broken}: " in error(KerastackError, root)
    Image.new("RGB", (4, 4)).save(broken, format="GIF")
    assert f"{broken} is a GIF image; expected PNG or JPEG" in error(KerastackError, root)
    assert "option channels=4: valid: 1 (grayscale), 3 (RGB)" in error(UsageError, root, channels=4)
    assert "option size=2" in error(UsageError, root, size=2)


def test_cli_names_an_empty_class_folder(tmp_path):
    root = write_images(tmp_path / "images", per_class=4)
    (root / "empty").mkdir()
    proc = run_cli("train", "--arch", "cnn", "--data", "image_folder", "--data-opt", f"path={root}", env=JAX)
    assert one_line_error(proc, 2) == (
        f"kerastack: error: dataset 'image_folder': class folder {root / 'empty'} holds no .png/.jpg/.jpeg images"
    )


@pytest.mark.slow
def test_cli_trains_a_cnn_on_an_image_folder(tmp_path):
    root = write_images(tmp_path / "images", per_class=20)
    out = tmp_path / "run"
    proc = run_cli(
        "train",
        "--arch",
        "cnn",
        "--data",
        "image_folder",
        "--data-opt",
        f"path={root}",
        "--data-opt",
        "size=16",
        "--batch-size",
        "8",
        "--epochs",
        "2",
        "--backend",
        "tensorflow",
        "--out",
        out,
        "--seed",
        "0",
        "--hp",
        "filters=4",
        "--hp",
        "dense=8",
    )
    assert proc.returncode == 0, proc.stderr
    spec = json.loads((out / "run.json").read_text())["spec"]
    assert spec["input_shape"] == [16, 16, 3] and spec["class_names"] == ["bright", "dark"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and "test_accuracy" in metrics and "val_accuracy" in metrics
    # --batch-size reaches the streamed splits: 28 training images in ceil(28 / 8) = 4 steps an epoch
    # (Keras's one line per epoch, stdout not being a terminal), not 1 batch of the loader's default 32.
    steps = re.findall(r"^(\d+)/(\d+) - ", proc.stdout, re.M)
    assert steps == [("4", "4")] * 2, proc.stdout
    record = json.loads((out / "run.json").read_text())
    assert record["training"]["batch_size"] == 8 and "batch_size" not in record["dataset"]["options"]


def test_a_batch_size_option_that_disagrees_with_training_is_refused(tmp_path):
    root = write_images(tmp_path / "images", per_class=4)
    args = ["train", "--arch", "cnn", "--data", "image_folder", "--data-opt", f"path={root}"]
    proc = run_cli(*args, "--data-opt", "batch_size=16", "--out", tmp_path / "run", env=JAX)
    assert one_line_error(proc, 2) == (
        "kerastack: error: dataset 'image_folder': --data-opt batch_size=16 disagrees with --batch-size 32: "
        "its batches are the training batches; set --batch-size 16 instead"
    )
    assert not (tmp_path / "run").exists()
