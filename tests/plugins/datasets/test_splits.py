"""``validation=0`` / ``test=0``: no such split (None), in every built-in dataset; the rest is unchanged."""

import sys
import types

import numpy as np
import pytest
from conftest import write_wav

from core.data import check_dataset, spec_of
from plugins.datasets import (
    audio_folder,
    csv_table,
    digits,
    image_folder,
    npz,
    shapes,
    sounds,
    tabular,
    text,
    tokens,
    waves,
)


def write_csv(path, n=40):
    lines = ["size,color,kind"] + [f"{i % 7},{('red', 'blue')[i % 2]},{('cat', 'dog')[i % 2]}" for i in range(n)]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def write_texts(path, n=40):
    lines = ["review,sentiment"] + [f"{('great', 'awful')[i % 2]} film {i},{('pos', 'neg')[i % 2]}" for i in range(n)]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def write_npz(path, n=40):
    np.savez(path, x_train=np.arange(2.0 * n).reshape(n, 2), y_train=np.arange(n) % 2)
    return str(path)


class FakeBatches:
    """Stands in for the keras PyDataset of image_folder: no keras import in the test process."""

    def __init__(self, paths, labels, read, batch_size, shuffle, seed):
        self.paths = paths

    def __len__(self):
        return len(self.paths)


def write_images(root, n=20):
    from PIL import Image

    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        for i in range(n // 2):
            Image.fromarray(np.full((8, 8), 20 * i, "uint8")).save(root / label / f"{i}.png")
    return str(root)


def write_clips(root, n=20):
    for label in ("a", "b"):
        for i in range(n // 2):
            write_wav(root / label / f"{i}.wav", np.full(80, 0.01 * i), 8000)
    return str(root)


STREAMED = ("image_folder", "audio_folder")  # their splits are FakeBatches here
LOADERS = {
    "digits": lambda tmp, **f: digits.load(**f),
    "iris": lambda tmp, **f: tabular.load("iris", **f),
    "shapes": lambda tmp, **f: shapes.load(samples=120, **f),
    "waves": lambda tmp, **f: waves.load(samples=120, **f),
    "tokens": lambda tmp, **f: tokens.load(samples=120, **f),
    "csv": lambda tmp, **f: csv_table.load(write_csv(tmp / "t.csv"), target="kind", **f),
    "text_csv": lambda tmp, **f: text.load_csv(write_texts(tmp / "r.csv"), text="review", label="sentiment", **f),
    "npz": lambda tmp, **f: npz.load(write_npz(tmp / "a.npz"), **f),
    "image_folder": lambda tmp, **f: image_folder.load(write_images(tmp / "images"), size=8, **f),
    "sounds": lambda tmp, **f: sounds.load(samples=40, duration=0.1, **f),
    "audio_folder": lambda tmp, **f: audio_folder.load(write_clips(tmp / "clips"), sample_rate=8000, **f),
}


def size(split):
    if split is None:
        return None
    return len(split.paths) if isinstance(split, FakeBatches) else len(split[0])


@pytest.mark.parametrize("name", LOADERS)
def test_a_share_of_0_is_no_split(name, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "plugins.datasets._streaming", types.SimpleNamespace(FileBatches=FakeBatches))
    load = LOADERS[name]
    (tmp_path / "default").mkdir()
    default = load(tmp_path / "default")
    total = sum(size(s) for s in (default.train, default.validation, default.test))
    for fractions, missing in (
        ({"validation": 0}, ("validation",)),
        ({"test": 0}, ("test",)),
        ({"validation": 0, "test": 0}, ("validation", "test")),
    ):
        folder = tmp_path / "-".join(missing)
        folder.mkdir()
        dataset = load(folder, **fractions)
        sizes = {s: size(dataset.split(s)) for s in ("train", "validation", "test")}
        assert [s for s, n in sizes.items() if n is None] == list(missing), (fractions, sizes)
        assert sum(n for n in sizes.values() if n) == total, sizes  # every sample still in some split
        for kept in {"validation", "test"} - set(missing):  # the other split is cut as before (±1: rounding)
            assert abs(sizes[kept] - size(default.split(kept))) <= 1, (fractions, kept)
        if name not in STREAMED:
            check_dataset(dataset, name)
            spec_of(dataset, name)
    if name not in STREAMED:
        assert default.evaluation_split()[0] == "test" and dataset.evaluation_split()[0] == "train"
