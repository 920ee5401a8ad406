"""``python -m tflite MODEL --text``: a text classifier trained on ``text_csv`` and exported to .tflite
classifies raw strings on the device as Keras classifies the same strings (issue 25). The vocabulary
and the tokenizing rule travel in the metadata embedded in the .tflite; ``tflite/text.py`` applies
them, the same code the dataset tokenized with."""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import run_python

from plugins.datasets import text as text_dataset
from plugins.datasets._files import split_indices
from tflite import load_metadata
from tflite import text as device_text
from tflite.metadata import EMBEDDED_KEY, embed_metadata

REPO = Path(__file__).resolve().parents[2]
LENGTH = 12  # token ids a text: some texts below are longer, and are cut
POSITIVE = ("great", "loved", "wonderful", "moving", "superb", "fun", "Brilliant", "charming")
NEGATIVE = ("boring", "hated", "awful", "dull", "slow", "mess", "Terrible", "bland")
FILLER = ("the", "film", "a", "plot", "actors", "café", "ending", "it's", "was", "and", "2024", "Über")


def reviews(n=240, seed=0):
    """``n`` (text, label) rows: filler words, one or two sentiment words (some upper-cased),
    punctuation, and a word of its own (out of vocabulary outside the train split)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = ("neg", "pos")[i % 2]
        words = [str(rng.choice(FILLER)) for _ in range(rng.integers(3, 18))]
        for _ in range(rng.integers(1, 3)):
            word = str(rng.choice(POSITIVE if label == "pos" else NEGATIVE))
            words.insert(int(rng.integers(0, len(words))), word.upper() if rng.random() < 0.3 else word)
        rows.append((" ".join(words) + str(rng.choice(["!", ".", "...", " :)", ""])) + f" Word{i}", label))
    return rows


# One TensorFlow process: train a small GRU on the texts, export float32 and int8, and keep the test
# split's token ids (the dataset's own) and Keras's probabilities for them.
JOB = f"""
import sys
import numpy as np
from core import export, load_dataset, load_run, train
path, out = sys.argv[1], sys.argv[2]
train("gru", "text_csv", backend="tensorflow", epochs=6, seed=0, out=out, verbose=0, learning_rate=0.01,
      batch_size=16, hparams={{"units": 8, "embed_dim": 8}}, data_options={{"path": path, "length": {LENGTH}}})
export(out, "tflite", {{"quantize": "none,int8"}})
run = load_run(out)
x = load_dataset(run).test[0]
np.save(f"{{out}}/test_ids.npy", x)
np.save(f"{{out}}/keras.npy", run.model.predict(x, verbose=0))
"""


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    """The run, with ``test.txt``: the raw texts of its test split, one a line, in split order."""
    folder = tmp_path_factory.mktemp("text-run")
    rows = reviews()
    with open(folder / "reviews.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("text", "label"), *rows])
    run = folder / "run"
    run_python(JOB, folder / "reviews.csv", run, env={"KERAS_BACKEND": "tensorflow"})
    labels = np.array([("neg", "pos").index(label) for _, label in rows], "int32")  # class names, sorted
    test = split_indices(len(rows), {"validation": 0.15, "test": 0.15}, 0, "test", "texts", labels=labels)[2]
    (run / "test.txt").write_text("".join(rows[i][0] + "\n" for i in test), encoding="utf-8")
    return run


def lite(run, name="float32"):
    return run / "export" / "tflite" / f"model_{name}.tflite"


def cli(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "tflite", *map(str, args)], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )


def top1(proc):
    assert proc.returncode == 0, proc.stderr
    return np.array([p["top"][0]["class"] for p in json.loads(proc.stdout)["predictions"]])


def test_the_training_side_tokenizes_with_the_device_code():
    """One rule, defined once: the dataset's tokenizer is tflite/text.py's."""
    assert text_dataset.tokenize is device_text.tokenize and text_dataset.words is device_text.words
    assert (text_dataset.PAD, text_dataset.OOV, text_dataset.TOKEN) == (
        device_text.PAD,
        device_text.OOV,
        device_text.TOKEN,
    )


def test_the_recorded_rule_tokenizes_and_a_foreign_one_is_refused(tmp_path):
    meta = {"vocabulary": ["<pad>", "<oov>", "great", "café"], "tokenizer": device_text.rule(4)}
    tokenizer = device_text.tokenizer_from_metadata(json.loads(json.dumps(meta)))  # as read back from JSON
    ids = tokenizer.encode(["GREAT Café!", "great_film, great great great"])  # _ splits words; cut at 4
    np.testing.assert_array_equal(ids, [[2, 3, 0, 0], [2, 1, 2, 2]])
    assert tokenizer.encode([]).shape == (0, 4)
    for change, needle in (({"padding": "pre"}, "'padding': 'pre'"), ({"length": 0}, "'length': 0")):
        with pytest.raises(ValueError, match=f"m.tflite: its tokenizing rule {{{needle}}} is not one"):
            device_text.tokenizer_from_metadata({**meta, "tokenizer": {**meta["tokenizer"], **change}}, "m.tflite")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(ValueError, match="latin1.txt: not UTF-8 text"):
        device_text.read_lines(tmp_path / "latin1.txt")


@pytest.mark.slow
def test_the_tflite_carries_the_vocabulary_and_the_rule(text_run):
    meta = load_metadata(lite(text_run, "int8"))
    assert meta["tokenizer"] == device_text.rule(LENGTH)
    assert meta["vocabulary"][:2] == ["<pad>", "<oov>"] and {"great", "über", "café"} <= set(meta["vocabulary"])
    assert json.loads((text_run / "export" / "tflite" / "model.json").read_text())["tokenizer"] == meta["tokenizer"]
    # The device's ids of the raw test texts are the dataset's, padding, cut and unknown words included.
    texts = (text_run / "test.txt").read_text(encoding="utf-8").splitlines()
    ids = device_text.tokenizer_from_metadata(meta).encode(texts)
    np.testing.assert_array_equal(ids, np.load(text_run / "test_ids.npy"))
    assert (ids == 0).any() and (ids == 1).any() and (ids != 0).all(axis=1).any()  # padded, unknown, cut


@pytest.mark.slow
@pytest.mark.parametrize("name,agreement", [("float32", 0.98), ("int8", 0.9)])
def test_raw_test_texts_get_kerass_classes(text_run, name, agreement):
    keras = np.load(text_run / "keras.npy").argmax(axis=1)
    assert set(keras) == {0, 1}  # a model that learned something: both classes come out
    got = top1(cli(lite(text_run, name), "--text", text_run / "test.txt", "--json", "--top", "1"))
    assert len(got) == len(keras) and np.mean(got == keras) >= agreement, (got, keras)


@pytest.mark.slow
def test_texts_on_the_command_line_print_classes_by_name(text_run):
    first, second = (text_run / "test.txt").read_text(encoding="utf-8").splitlines()[:2]
    proc = cli(lite(text_run, "int8"), "--text", first, "--text", second, "--top", "2")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["0", "1"]
    assert all(sorted(w for w in line.split()[1::2]) == ["neg", "pos"] for line in lines), lines
    from_file = top1(cli(lite(text_run, "int8"), "--text", text_run / "test.txt", "--json"))
    assert [line.split()[1] for line in lines] == [("neg", "pos")[c] for c in from_file[:2]]


@pytest.mark.slow
def test_text_errors_are_one_line(text_run, tmp_path):
    model = lite(text_run)
    meta = load_metadata(model)
    unruled = tmp_path / "unruled.tflite"  # a vocabulary without the rule: exported before it was recorded
    embed_metadata(model, unruled, EMBEDDED_KEY, json.dumps({**meta, "tokenizer": None}).encode())
    plain = tmp_path / "plain.tflite"  # no vocabulary: not a text model
    embed_metadata(model, plain, EMBEDDED_KEY, json.dumps({"class_names": meta["class_names"]}).encode())
    shutil.copy(text_run / "test.txt", tmp_path / "reviews.txt")
    shutil.copy(text_run / "test.txt", tmp_path / "reviews")  # text by its content, whatever its name
    cases = {
        (plain, "--text", "a great film"): (2, "--text: ", "records no vocabulary"),
        (unruled, "--text", "a great film"): (2, "--text: ", "no tokenizing rule"),
        (model, "--text", tmp_path / "gone.txt"): (1, "gone.txt", "no such file"),
        (model, "--input", tmp_path / "reviews.txt"): (1, "a text file, not a .npy", f"use --text {tmp_path}"),
        (plain, "--input", tmp_path / "reviews.txt"): (1, "a text file, not a .npy", "records no vocabulary"),
        (model, "--input", tmp_path / "reviews"): (1, "a text file, not a .npy", "use --text"),
        (model, "--input", tmp_path / "reviews.txt", "--text", "hi"): (2, "--input", "not both"),
    }
    for args, (code, *needles) in cases.items():
        proc = cli(*args)
        assert proc.returncode == code and proc.stdout == "", (args, proc.stderr)
        assert proc.stderr.startswith("tflite: error: ") and proc.stderr.count("\n") == 1, proc.stderr
        assert all(n in proc.stderr for n in needles) and "pickle" not in proc.stderr, proc.stderr
