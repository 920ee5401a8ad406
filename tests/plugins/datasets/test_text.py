"""``text_folder`` and ``text_csv``: tokenizer, vocabulary from the train split, ids, padding, errors."""

import csv
import json

import numpy as np
import pytest
from conftest import one_line_error, run_cli

from core import KerastackError, PluginHost, UsageError
from core.data import check_dataset, spec_of
from plugins.datasets.text import OOV, PAD, build_vocabulary, load_csv, load_folder, tokenize, words
from tflite.text import rule

GOOD = ("a great film", "loved it, great acting", "wonderful and moving", "great fun")
BAD = ("a boring film", "hated it, awful acting", "dull and slow", "awful mess")


def reviews(n):
    """``n`` (text, label) pairs, alternating positive and negative."""
    return [(f"{(GOOD, BAD)[i % 2][i // 2 % 4]} number{i}", ("pos", "neg")[i % 2]) for i in range(n)]


def write_folder(root, n=40):
    for i, (text, label) in enumerate(reviews(n)):
        (root / label).mkdir(parents=True, exist_ok=True)
        (root / label / f"{i}.txt").write_text(text)
    return root


def write_csv(path, n=40):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "review", "sentiment"])
        writer.writerows((i, text, label) for i, (text, label) in enumerate(reviews(n)))
    return path


def test_both_are_registered_with_their_options():
    host = PluginHost(["plugins.datasets.text"], builtins=(), entry_points=False, disabled=())
    registry = host.registry("dataset")
    assert registry.get("text_folder").defaults == {
        "path": "",
        "max_tokens": 5000,
        "length": 64,
        "validation": 0.15,
        "test": 0.15,
        "seed": 0,
    }
    assert registry.get("text_csv").defaults == {
        "path": "",
        "text": "text",
        "label": "label",
        "delimiter": ",",
        "max_tokens": 5000,
        "length": 64,
        "validation": 0.15,
        "test": 0.15,
        "seed": 0,
    }


def test_words_are_lowercased_runs_of_letters_and_digits():
    assert words("Don't STOP -- café_au_lait, 42x!") == ["don", "t", "stop", "café", "au", "lait", "42x"]


def test_tokenize_maps_known_words_unknown_to_1_and_pads_with_0():
    vocabulary = [PAD, OOV, "the", "cat"]
    assert tokenize("The cat sat", vocabulary, 5) == [2, 3, 1, 0, 0]
    assert tokenize("the cat the cat the", vocabulary, 3) == [2, 3, 2]  # cut after `length` words
    assert tokenize("", vocabulary, 2) == [0, 0]
    assert tokenize("<pad> <oov>", vocabulary, 2) == [1, 1]  # the reserved names are not words


def test_vocabulary_is_most_frequent_first_ties_alphabetical_capped_at_max_tokens():
    texts = ["b a c", "a b", "a d"]
    assert build_vocabulary(texts, 10) == [PAD, OOV, "a", "b", "c", "d"]
    assert build_vocabulary(texts, 2) == [PAD, OOV, "a", "b"]


def test_text_folder_gives_int32_ids_and_the_vocabulary_of_the_train_split(tmp_path):
    dataset = load_folder(str(write_folder(tmp_path / "reviews")), length=6, max_tokens=50)
    check_dataset(dataset, "text_folder")
    spec = spec_of(dataset)
    assert spec.input_shape == (6,) and spec.input_dtype == "int32"
    assert spec.class_names == ("neg", "pos") and spec.num_classes == 2
    assert dataset.vocab_size == spec.vocab_size == len(dataset.vocabulary)
    assert dataset.tokenizer == rule(6)  # the rule a device tokenizes with, recorded beside the vocabulary
    assert dataset.vocabulary[:3] == [PAD, OOV, "great"]  # 'great' is the most frequent word
    assert [len(s[0]) for s in (dataset.train, dataset.validation, dataset.test)] == [28, 6, 6]
    for x, y in (dataset.train, dataset.validation, dataset.test):
        assert x.dtype == np.int32 and y.dtype == np.int32
        assert x.min() >= 0 and x.max() < dataset.vocab_size
    # 'numberN' is unique to each text: those of the train split are in the vocabulary, the others
    # are out of vocabulary (id 1), so every validation/test sequence holds a 1.
    assert all((x == 1).any(axis=1).all() for x, _ in (dataset.validation, dataset.test))
    assert not (dataset.train[0] == 1).any()
    # The sequences are tokenize(text) with the attached vocabulary, padded with 0.
    assert tokenize("a great film", dataset.vocabulary, 6)[3:] == [0, 0, 0]


def test_text_csv_reads_the_named_columns_and_max_tokens_caps_the_vocabulary(tmp_path):
    path = write_csv(tmp_path / "reviews.csv")
    dataset = load_csv(str(path), text="review", label="sentiment", max_tokens=5, length=4)
    assert dataset.class_names == ("neg", "pos")
    assert dataset.vocab_size == 7 and len(dataset.vocabulary) == 7
    assert dataset.train[0].shape[1:] == (4,)
    assert dataset.vocabulary[:2] == [PAD, OOV] and "great" in dataset.vocabulary
    assert not any(word.startswith("number") for word in dataset.vocabulary)  # each occurs once


def test_text_csv_names_the_rows_it_drops_for_a_missing_label(tmp_path, capsys):
    path = tmp_path / "r.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["review", "sentiment"])
        writer.writerows((text, "" if i in (3, 17) else label) for i, (text, label) in enumerate(reviews(40)))
    dataset = load_csv(str(path), text="review", label="sentiment")
    assert sum(len(s[0]) for s in (dataset.train, dataset.validation, dataset.test)) == 38
    err = capsys.readouterr().err
    assert err == f"text_csv: warning: dropped 2 of 40 rows with no value in label 'sentiment': {path} lines 5 and 19\n"


def test_same_seed_same_split(tmp_path):
    root = str(write_folder(tmp_path / "r"))
    a, b, c = load_folder(root), load_folder(root), load_folder(root, seed=1)
    np.testing.assert_array_equal(a.test[0], b.test[0])
    assert a.vocabulary == b.vocabulary and not np.array_equal(a.test[0], c.test[0])


def error(exc_type, load, **options):
    with pytest.raises(exc_type) as info:
        load(**options)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_folder_errors_name_the_folder_or_file(tmp_path):
    assert "dataset 'text_folder': option path is not set" in error(UsageError, load_folder)
    assert "no such folder" in error(UsageError, load_folder, path=str(tmp_path / "none"))
    (tmp_path / "only" / "pos").mkdir(parents=True)
    (tmp_path / "only" / "pos" / "a.txt").write_text("hi")
    assert "has 1 class subfolder ('pos'); classification needs at least 2" in error(
        UsageError, load_folder, path=str(tmp_path / "only")
    )
    (tmp_path / "only" / "neg").mkdir()
    assert f"class folder {tmp_path / 'only' / 'neg'} holds no .txt files" in error(
        UsageError, load_folder, path=str(tmp_path / "only")
    )
    (tmp_path / "only" / "neg" / "b.txt").write_bytes(b"caf\xe9")
    assert f"{tmp_path / 'only' / 'neg' / 'b.txt'} is not UTF-8 text" in error(
        KerastackError, load_folder, path=str(tmp_path / "only")
    )
    assert "option length=0" in error(UsageError, load_folder, path=str(tmp_path), length=0)


def test_csv_errors_name_the_column(tmp_path):
    path = write_csv(tmp_path / "r.csv")
    message = error(UsageError, load_csv, path=str(path), label="sentiment")
    assert message == (
        f"dataset 'text_csv': option text='text': no such column in {path}; columns: id, review, sentiment"
    )
    assert "option label='sentimnt': no such column" in error(
        UsageError, load_csv, path=str(path), text="review", label="sentimnt"
    )
    assert "(did you mean 'sentiment'?)" in error(UsageError, load_csv, path=str(path), text="review", label="sentimnt")


def test_cli_names_a_missing_text_column(tmp_path):
    path = write_csv(tmp_path / "r.csv")
    proc = run_cli(
        "train",
        "--arch",
        "mlp",
        "--data",
        "text_csv",
        "--data-opt",
        f"path={path}",
        "--data-opt",
        "text=body",
        env={"KERAS_BACKEND": "jax"},
    )
    assert one_line_error(proc, 2) == (
        f"kerastack: error: dataset 'text_csv': option text='body': no such "
        f"column in {path}; columns: id, review, sentiment"
    )


@pytest.mark.slow
def test_cli_trains_on_a_text_folder(tmp_path):
    root = write_folder(tmp_path / "reviews", n=60)
    out = tmp_path / "run"
    proc = run_cli(
        "train",
        "--arch",
        "mlp",
        "--data",
        "text_folder",
        "--data-opt",
        f"path={root}",
        "--data-opt",
        "length=8",
        "--epochs",
        "2",
        "--quiet",
        "--backend",
        "torch",
        "--out",
        out,
        "--seed",
        "0",
        "--hp",
        "units=8",
    )
    assert proc.returncode == 0, proc.stderr
    record = json.loads((out / "run.json").read_text())
    spec = record["spec"]
    assert spec["input_shape"] == [8] and spec["input_dtype"] == "int32"
    assert spec["class_names"] == ["neg", "pos"] and spec["vocab_size"] == len(load_folder(str(root)).vocabulary)
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 2
