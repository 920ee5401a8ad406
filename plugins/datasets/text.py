"""``text_folder`` and ``text_csv``: your own texts and their classes, as padded int32 token ids.

The tokenizing rule (``words``, ``tokenize``) is ``tflite/text.py``'s, the code a device runs: the
dataset records it (``dataset.tokenizer``) beside its vocabulary, the exporter embeds both in each
.tflite, and ``python -m tflite MODEL --text`` tokenizes as training did by construction.
"""

from core import hookimpl
from tflite.text import OOV, PAD, TOKEN, Tokenizer, rule, tokenize, words

__all__ = ["OOV", "PAD", "TOKEN", "build_vocabulary", "dataset", "load_csv", "load_folder", "tokenize", "words"]


@hookimpl
def register_datasets(register):
    register(
        "text_folder",
        load_folder,
        summary="your own .txt files in class subfolders (--data-opt path=DIR), as token ids",
    )
    register(
        "text_csv",
        load_csv,
        summary="your own texts and labels in two CSV columns (--data-opt path=FILE), as token ids",
    )


def build_vocabulary(texts, max_tokens):
    """``[PAD, OOV, *tokens]``: the ``max_tokens`` most frequent words of ``texts``, most frequent
    first, ties in alphabetical order."""
    from collections import Counter

    counts = Counter(word for text in texts for word in words(text))
    ranked = sorted(counts, key=lambda word: (-counts[word], word))
    return [PAD, OOV, *ranked[:max_tokens]]


def load_folder(path="", max_tokens=5000, length=64, validation=0.15, test=0.15, seed=0):
    """Texts are the ``.txt`` files (UTF-8) anywhere under each class subfolder of ``path``; class
    names are the subfolder names, sorted. See ``dataset`` for the encoding and the split."""
    owner = "dataset 'text_folder'"
    check_options(max_tokens, length, owner)
    texts, labels, class_names = read_folder(path, owner)
    return dataset(texts, labels, class_names, max_tokens, length, validation, test, seed, owner)


def load_csv(
    path="", text="text", label="label", delimiter=",", max_tokens=5000, length=64, validation=0.15, test=0.15, seed=0
):
    """Texts from column ``text``, classes from column ``label`` of a CSV file with a header row;
    class names are the labels, sorted (by value if all are numbers). Rows without a label are
    dropped. See ``dataset`` for the encoding and the split."""
    from plugins.datasets._files import column_index, encode_labels, is_missing, read_table, warn, which_lines

    owner = "dataset 'text_csv'"
    check_options(max_tokens, length, owner)
    header, rows, lines = read_table(path, delimiter, owner)
    t = column_index(header, text, "text", path, owner)
    c = column_index(header, label, "label", path, owner)
    labelled = [row for row in rows if not is_missing(row[c])]
    dropped = [line for row, line in zip(rows, lines) if is_missing(row[c])]
    if dropped:
        warn(
            "text_csv",
            f"dropped {len(dropped)} of {len(rows)} rows with no value in label {label!r}: {path} {which_lines(dropped)}",
        )
    class_names, labels = encode_labels([row[c] for row in labelled], f"label column {label!r}", owner)
    texts = [row[t] for row in labelled]
    return dataset(texts, labels, class_names, max_tokens, length, validation, test, seed, owner)


def dataset(texts, labels, class_names, max_tokens, length, validation, test, seed, owner):
    """Sequences as int32 token ids with shape (length,); a split stratified by class, fixed by
    ``seed``. The vocabulary is the ``max_tokens`` most frequent words of the train split (ids 0
    padding, 1 out of vocabulary, then by frequency), attached as ``dataset.vocabulary``, and the
    tokenizing rule as ``dataset.tokenizer`` (``tflite.text.rule``): model.json and the .tflite's
    metadata record both, for a device."""
    import numpy as np

    from core import Dataset
    from plugins.datasets._files import split_indices, take

    labels = np.asarray(labels, dtype="int32")
    train, val, tst = split_indices(
        len(texts), {"validation": validation, "test": test}, seed, owner, "texts", labels=labels
    )
    vocabulary = build_vocabulary([texts[i] for i in train], max_tokens)
    x = Tokenizer(vocabulary, length).encode(texts)
    data = Dataset(
        train=(x[train], labels[train]),
        validation=take(val, x, labels),
        test=take(tst, x, labels),
        task="classification",
        class_names=tuple(class_names),
        vocab_size=len(vocabulary),
    )
    data.vocabulary = vocabulary
    data.tokenizer = rule(length)
    return data


def check_options(max_tokens, length, owner):
    from core import UsageError

    if max_tokens < 1:
        raise UsageError(f"{owner}: option max_tokens={max_tokens}: expected at least 1")
    if not 1 <= length <= 100_000:
        raise UsageError(f"{owner}: option length={length}: expected an integer in [1, 100000]")


def read_folder(path, owner):
    """``(texts, labels, class_names)`` of the ``.txt`` files under the class subfolders of ``path``."""
    from core import KerastackError
    from plugins.datasets._files import class_files

    files, labels, class_names = class_files(path, (".txt",), owner, "TEXT.txt")
    texts = []
    for file in files:
        try:
            texts.append(file.read_text(encoding="utf-8-sig"))
        except UnicodeDecodeError as exc:
            raise KerastackError(f"{owner}: {file} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        except OSError as exc:
            raise KerastackError(f"{owner}: cannot read {file}: {exc.strerror or exc}") from None
    return texts, labels, class_names
