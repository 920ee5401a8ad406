"""``hf``: Hugging Face ``datasets`` offline — a local parquet file of texts and a local imagefolder
trained, exported to int8 and verified; columns, splits and the Hub when it cannot be reached."""

import os

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")  # before `datasets` is imported: never the network

import re

import numpy as np
import pytest
from conftest import one_line_error, read_json, run_cli, run_python
from hub_jobs import OFFLINE, train_export_verify
from PIL import Image

from core import PluginHost, UsageError
from plugins.datasets.hf import load

POSITIVE = ["good", "great", "fine", "lovely", "superb", "nice"]
NEGATIVE = ["bad", "awful", "poor", "dull", "boring", "weak"]


def write_parquet(path, n=80, seed=0):
    """Reviews (``review``) whose words say the ``sentiment`` (pos/neg), plus an ``id`` column."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    sentiments = ["pos" if i % 2 else "neg" for i in range(n)]
    reviews = [" ".join(rng.choice(POSITIVE if s == "pos" else NEGATIVE, 6)) + " film" for s in sentiments]
    pd.DataFrame({"id": range(n), "review": reviews, "sentiment": sentiments}).to_parquet(path)
    return path


def write_imagefolder(root, per_class=12, seed=0):
    """Hugging Face's imagefolder layout (class subfolders): ``bright`` and ``dark`` images of varied sizes."""
    rng = np.random.default_rng(seed)
    for c, name in enumerate(("bright", "dark")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.clip(rng.normal(200 if c == 0 else 40, 20, (10 + i, 14, 3)), 0, 255).astype("uint8")
            Image.fromarray(pixels).save(root / name / f"{i}.{'png' if i % 2 else 'jpg'}")
    return root


def test_registered_with_its_options():
    host = PluginHost(["plugins.datasets.hf"], builtins=(), entry_points=False, disabled=())
    defaults = host.registry("dataset").get("hf").defaults
    assert list(defaults) == [
        "name", "split", "config", "test_split", "image", "text", "label", "cache_dir", "size", "channels",
        "max_tokens", "length", "samples", "batch_size", "validation", "test", "seed", "mask", "classes",
        "boxes", "box_format", "max_boxes",
    ]  # fmt: skip
    assert defaults["split"] == "train" and defaults["size"] == 32 and defaults["channels"] == 3


# The loader's own checks, run first in the training process (a TensorFlow process costs ~10 s).
STREAMING = """
import json, sys
from plugins.datasets.hf import load

folder, cache = sys.argv[2], sys.argv[3]
options = dict(size=8, channels=1, batch_size=4, validation=0.25, test=0.25, seed=1, cache_dir=cache)
data, again = load(folder, **options), load(folder, **options)
x, y = data.train[0]
facts = {"stream": {
    "class_names": data.class_names,
    "rows": [len(s.paths) for s in (data.train, data.validation, data.test)],
    "batch": [list(x.shape), str(x.dtype), float(x.min()), float(x.max()), str(y.dtype)],
    "test_labels": data.test.labels.tolist(),
    "same_seed_same_rows": data.train.paths == again.train.paths,
    "few": len(load(folder, samples=8, validation=0.25, test=0.25, cache_dir=cache).train.paths),
}}
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The facts of one TensorFlow process: the loader's checks on an imagefolder (``STREAMING``),
    then a parquet file of texts and an imagefolder trained 1 epoch, exported to int8 and verified."""
    tmp = tmp_path_factory.mktemp("hf")
    parquet = write_parquet(tmp / "reviews.parquet")
    images = write_imagefolder(tmp / "images")
    jobs = [
        dict(
            arch="mlp",
            data="hf",
            options={"name": str(parquet), "label": "sentiment", "length": 8},
            hp={"units": [8]},
            out=str(tmp / "text-run"),
        ),
        dict(
            arch="cnn",
            data="hf",
            options={"name": str(images), "size": 16},
            hp={"filters": 4, "dense": 8},
            out=str(tmp / "image-run"),
            batch_size=8,
        ),
    ]
    cache = tmp / "hf-cache"
    small = write_imagefolder(tmp / "small", per_class=8)
    facts = train_export_verify(
        jobs, env={"HF_DATASETS_CACHE": str(cache)}, prelude=STREAMING, args=(small, tmp / "stream-cache")
    )
    return facts, [facts[job["out"]] for job in jobs], cache


@pytest.mark.slow
def test_a_parquet_file_and_an_imagefolder_train_export_int8_and_verify(trained):
    _, (text, image), cache = trained
    for done in (text, image):
        assert done["files"] == ["labels.txt", "model.json", "model_int8.tflite"]
        assert done["verify"]["agreement"] >= 0.9 and done["verify"]["samples"] > 0, done["verify"]
    assert text["labels"] == ["neg", "pos"] == text["model_json"]["class_names"] == text["embedded"]["class_names"]
    assert image["embedded"]["class_names"] == ["bright", "dark"]
    assert text["run"]["spec"]["input_shape"] == [8] and text["run"]["spec"]["input_dtype"] == "int32"
    assert {"good", "bad", "film"} <= set(text["model_json"]["vocabulary"])  # a device tokenizes as training did
    assert image["labels"] == ["bright", "dark"]  # the class subfolders, through Hugging Face's ClassLabel
    assert image["run"]["spec"]["input_shape"] == [16, 16, 3]
    assert image["model_json"]["normalization"]["scale"] == pytest.approx(1 / 255)
    assert any(cache.iterdir())  # datasets' own cache, where it was told


@pytest.mark.slow
def test_an_imagefolder_streams_stratified_splits_of_resized_images(trained):
    facts = trained[0]["stream"]
    assert facts["class_names"] == ["bright", "dark"]
    assert facts["rows"] == [8, 4, 4]
    shape, dtype, low, high, label_dtype = facts["batch"]
    assert (shape, dtype, label_dtype) == ([4, 8, 8, 1], "float32", "int32") and 0 <= low < high <= 1
    assert sorted(facts["test_labels"]) == [0, 0, 1, 1]  # stratified
    assert facts["same_seed_same_rows"] and facts["few"] == 4  # samples=8 drawn at random: both classes


def error(exc_type, **options):
    with pytest.raises(exc_type) as info:
        load(**options)
    message = str(info.value)
    assert "\n" not in message and message.startswith("dataset 'hf': ")
    return message


def test_bad_columns_splits_and_names_are_named(tmp_path):
    parquet = str(write_parquet(tmp_path / "reviews.parquet", n=20))
    cache = str(tmp_path / "cache")
    assert error(UsageError, name=parquet, label="sentimnt", cache_dir=cache) == (
        f"dataset 'hf': option label='sentimnt': no such column in {parquet} (did you mean 'sentiment'?); "
        "columns: id, review, sentiment"
    )
    assert "option text='body': no such column" in error(UsageError, name=parquet, text="body", label="sentiment")
    assert error(UsageError, name=parquet, cache_dir=cache) == (
        f"dataset 'hf': {parquet} has no ClassLabel column nor one called label (columns: id (int64), "
        "review (large_string), sentiment (large_string)); give --data-opt label=COLUMN"
    )
    assert error(UsageError, name=parquet, split="tets", label="sentiment", cache_dir=cache) == (
        f"dataset 'hf': option split='tets': no such split of {parquet}; valid: train"
    )
    assert "give one of them" in error(UsageError, name=parquet, image="a", text="b")
    assert error(UsageError, name=parquet, config="plain_text") == (
        f"dataset 'hf': option config='plain_text' names a configuration of a Hub dataset; {parquet} is a local file"
    )
    assert error(UsageError, name=parquet, image="review", label="sentiment", cache_dir=cache).startswith(
        f"dataset 'hf': option image='review': column 'review' of {parquet} holds large_string, not images (columns: "
    )
    assert "option text='id': column 'id' of" in error(UsageError, name=parquet, text="id", label="sentiment")
    assert error(UsageError, name=str(tmp_path / "none.parquet")).endswith("none.parquet': no such file or folder")
    (tmp_path / "notes.txt").write_text("x")
    assert "cannot read .txt; valid: .csv, .json, .jsonl, .parquet files, or a folder" in error(
        UsageError, name=str(tmp_path / "notes.txt")
    )
    assert error(UsageError) == (
        "dataset 'hf': option name is not set; give a Hub dataset (OWNER/NAME), a local folder or a .parquet file"
    )


def test_a_folder_of_split_files_gives_its_own_test_split(tmp_path):
    """A Hub dataset's layout (data/train-*.parquet, data/test-*.parquet), as `hf download` leaves it."""
    (tmp_path / "reviews" / "data").mkdir(parents=True)
    write_parquet(tmp_path / "reviews" / "data" / "train-00000-of-00001.parquet", n=40)
    write_parquet(tmp_path / "reviews" / "data" / "test-00000-of-00001.parquet", n=10, seed=1)
    options = dict(name=str(tmp_path / "reviews"), label="sentiment", length=6, cache_dir=str(tmp_path / "cache"))
    data = load(**options, test_split="test", validation=0.25)
    x_test, y_test = data.test
    assert x_test.shape == (10, 6) and sorted(y_test.tolist()) == [0] * 5 + [1] * 5
    assert len(data.train[0]) == 30 and len(data.validation[0]) == 10  # 25 % of train's 40, no test cut
    assert data.class_names == ("neg", "pos") and x_test.max() < len(data.vocabulary)
    assert "option test_split='tst': no such split of" in error(UsageError, **options, test_split="tst")
    assert "(did you mean 'test'?); valid: test, train" in error(UsageError, **options, test_split="tst")


def test_cli_a_missing_column_exits_2_and_an_unreachable_hub_exits_1_saying_what_to_fetch(tmp_path):
    parquet = write_parquet(tmp_path / "reviews.parquet", n=20)
    env = {"KERAS_BACKEND": "jax", "HF_DATASETS_CACHE": str(tmp_path / "cache"), **OFFLINE}
    args = ["train", "--arch", "mlp", "--data", "hf", "--out", tmp_path / "run"]
    proc = run_cli(*args, "--data-opt", f"name={parquet}", "--data-opt", "label=stars", env=env)
    assert one_line_error(proc, 2) == (
        f"kerastack: error: dataset 'hf': option label='stars': no such column in {parquet}; "
        "columns: id, review, sentiment"
    )
    proc = run_cli(*args, "--data-opt", "name=stanfordnlp/imdb", env=env)
    message = one_line_error(proc, 1)
    assert message.startswith(
        "kerastack: error: dataset 'hf': cannot download 'stanfordnlp/imdb' from the Hugging Face Hub ("
    )
    assert message.endswith(
        "on a connected machine run `hf download stanfordnlp/imdb --repo-type dataset --local-dir DIR`, copy DIR here "
        "and give --data-opt name=DIR (or copy the datasets cache, HF_DATASETS_CACHE)"
    )
    assert not (tmp_path / "run").exists()


def write_masks_parquet(path, n=20, seed=0):
    """RGB ``photo``s of a dark background, a bright (class 1) or grey (class 2) square, and their
    ``seg`` masks, grayscale and palette PNGs in turn (datasets' ``Image`` feature)."""
    import datasets

    rng = np.random.default_rng(seed)
    photos, masks = [], []
    for i in range(n):
        m = np.zeros((24, 24), "uint8")
        top, left = rng.integers(0, 12, 2)
        m[top : top + 10, left : left + 10] = 1 + i % 2
        photos.append(Image.fromarray(np.stack([np.array([20, 230, 120], "uint8")[m]] * 3, -1)))
        indexed = Image.fromarray(m, "P")
        indexed.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
        masks.append(indexed if i % 2 else Image.fromarray(m, "L"))
    features = datasets.Features({"photo": datasets.Image(), "seg": datasets.Image()})
    datasets.Dataset.from_dict({"photo": photos, "seg": masks}, features=features).to_parquet(path)
    return path


MASKS = """
import json, sys
import numpy as np
from core.data import spec_of
from plugins.datasets.hf import load

data = load(sys.argv[1], mask="seg", classes="bg,bright,grey", size=16, batch_size=4, cache_dir=sys.argv[2])
x, y = data.train[0]
level = x[..., 0]
facts = {"task": data.task, "names": data.class_names, "classes": spec_of(data).num_classes,
         "x": [list(x.shape), str(x.dtype)], "y": [list(y.shape), str(y.dtype)],
         "means": [float(level[y == c].mean()) for c in range(3)],
         "rows": [len(s.paths) for s in (data.train, data.validation, data.test)]}
try:  # grey squares (index 2) beyond the classes: found when their batch is read
    fewer = load(sys.argv[1], mask="seg", classes="bg,bright", size=16, batch_size=4, cache_dir=sys.argv[2])
    [fewer.train[i] for i in range(len(fewer.train))]
except Exception as exc:
    facts["error"] = str(exc)
json.dump(facts, open(sys.argv[3], "w"))
"""


def test_a_mask_column_makes_a_segmentation_dataset(tmp_path):
    parquet = write_masks_parquet(tmp_path / "masks.parquet")
    run_python(MASKS, parquet, tmp_path / "cache", tmp_path / "facts.json", env={"KERAS_BACKEND": "jax", **OFFLINE})
    facts = read_json(tmp_path / "facts.json")
    assert (facts["task"], facts["names"], facts["classes"]) == ("segmentation", ["bg", "bright", "grey"], 3)
    assert facts["x"] == [[4, 16, 16, 3], "float32"] and facts["y"] == [[4, 16, 16], "int32"]
    means = facts["means"]  # each mask lies on its own image: every class has its own brightness
    assert means[0] < 0.15 and means[1] > 0.75 and abs(means[2] - 120 / 255) < 0.1, means
    assert facts["rows"] == [14, 3, 3]
    assert re.fullmatch(
        rf"dataset 'hf': the mask of row \d+ of {re.escape(str(parquet))} train holds class index 2; the 2 "
        r"classes \(bg, bright\) take 0\.\.1",
        facts["error"],
    ), facts["error"]
    assert "needs --data-opt classes=NAME,NAME,..." in error(UsageError, name=str(parquet), mask="seg")
    assert "option mask='sge': no such column" in error(UsageError, name=str(parquet), mask="sge", classes="a,b")
