"""Text → the token ids a text model takes: kerastack's one tokenizing rule, in the standard library.

The rule: lower-case the text (``str.lower``), take the runs of letters and digits (Python ``re``'s
``[^\\W_]+``, any script), look each word up in the vocabulary (a word outside it is id 1, ``<oov>``),
keep the first ``length`` ids and pad after them with id 0 (``<pad>``).

Training uses this module (``plugins/datasets/text.py``: ``text_folder``, ``text_csv`` and the text
columns of ``hf`` and ``tfds`` import it), and the exporter records the rule (``rule``) beside the
vocabulary in the metadata embedded in each ``.tflite``; ``tokenizer_from_metadata`` reads both back on
the device, so the two sides tokenize identically by construction. The tokenizing is not in the
exported graph: TFLite's builtin ops have no regex tokenizer (see tflite/README.md).
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["OOV", "PAD", "TOKEN", "Tokenizer", "read_lines", "rule", "tokenize", "tokenizer_from_metadata", "words"]

PAD, OOV = "<pad>", "<oov>"  # ids 0 and 1; the tokenizer never produces them (no < or >)
PAD_ID, OOV_ID = 0, 1
TOKEN = re.compile(r"[^\W_]+")  # runs of letters and digits, any script
KIND = "words"  # the rule's name in the metadata: a device refuses a rule it does not know
TEXT_SUFFIXES = (".txt", ".text")  # --text reads a file with one of these names (one text a line)


def words(text: str, pattern: re.Pattern = TOKEN, lowercase: bool = True) -> list[str]:
    """Lower-cased runs of letters and digits: ``"Don't STOP!"`` → ``["don", "t", "stop"]``."""
    return pattern.findall(text.lower() if lowercase else text)


def tokenize(text: str, vocabulary, length: int) -> list[int]:
    """``length`` token ids of ``text``: 1 for a word outside ``vocabulary``, the rest cut off, 0s
    after the end. ``vocabulary`` is the list of tokens by id (``dataset.vocabulary``) or a dict
    token → id."""
    return Tokenizer(vocabulary, length).ids(text)


def rule(length: int) -> dict:
    """The rule as the metadata records it (``tokenizer``): what a device needs besides the vocabulary."""
    return {
        "kind": KIND,
        "lowercase": True,
        "pattern": TOKEN.pattern,
        "pattern_syntax": "python re, Unicode (words are its matches, in order)",
        "length": int(length),
        "truncation": "post",
        "padding": "post",
        "pad_id": PAD_ID,
        "oov_id": OOV_ID,
    }


class Tokenizer:
    """The rule with one vocabulary: ``ids(text)``, and ``encode(texts)`` for a batch as int32."""

    def __init__(self, vocabulary, length: int, pattern: re.Pattern = TOKEN, lowercase: bool = True):
        self.index = vocabulary if isinstance(vocabulary, dict) else {t: i for i, t in enumerate(vocabulary)}
        self.length, self.pattern, self.lowercase = int(length), pattern, lowercase

    def ids(self, text: str) -> list[int]:
        out = [self.index.get(word, OOV_ID) for word in words(text, self.pattern, self.lowercase)[: self.length]]
        return out + [PAD_ID] * (self.length - len(out))

    def encode(self, texts):
        """``texts`` as an int32 array of shape (len(texts), length)."""
        import numpy as np

        return np.array([self.ids(text) for text in texts], dtype=np.int32).reshape(len(texts), self.length)


def tokenizer_from_metadata(metadata: dict | None, source: str = "the model") -> Tokenizer:
    """The ``Tokenizer`` a model's metadata records (``vocabulary`` and ``tokenizer``, see ``rule``);
    a ValueError naming ``source`` and what is missing when it records none or one this code cannot
    follow (written by a newer exporter)."""
    meta = metadata or {}
    vocabulary, recorded = meta.get("vocabulary"), meta.get("tokenizer")
    if not isinstance(vocabulary, list) or not vocabulary:
        raise ValueError(
            f"{source}: its metadata records no vocabulary: --text is for a model trained on a text dataset "
            "(text_folder, text_csv, or the text column of hf or tfds); give this one --input FILE.npy"
        )
    if not isinstance(recorded, dict):
        raise ValueError(
            f"{source}: its metadata records a vocabulary but no tokenizing rule ('tokenizer'; exported before "
            "kerastack recorded it, or from a dataset with its own word ids such as imdb): re-export it, or "
            "give token ids with --input FILE.npy"
        )
    expected = {k: v for k, v in rule(0).items() if k not in ("length", "pattern", "lowercase", "pattern_syntax")}
    wrong = {k: recorded.get(k) for k, v in expected.items() if recorded.get(k) != v}
    length = recorded.get("length")
    if wrong or not isinstance(length, int) or length < 1:
        raise ValueError(
            f"{source}: its tokenizing rule {wrong or {'length': length}} is not one this runner follows "
            f"({expected} with a positive length); update tflite/ from the kerastack that exported it"
        )
    try:
        pattern = re.compile(str(recorded.get("pattern", TOKEN.pattern)))
    except re.error as e:
        raise ValueError(f"{source}: its tokenizing rule's pattern does not compile ({e})") from None
    return Tokenizer(vocabulary, length, pattern, bool(recorded.get("lowercase", True)))


def read_lines(path: str | Path) -> list[str]:
    """The texts of a UTF-8 file, one a line (line i+1 is text i; a blank line is a text without
    words, all padding); a ValueError naming the file when it is not UTF-8 text."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as e:
        raise ValueError(
            f"{path}: not UTF-8 text ({e.reason} at byte {e.start}); --text reads one text a line"
        ) from None
