"""Raw table rows → the model's inputs, on the device: the column encodings a ``csv`` model's
metadata records under ``preprocessing.columns`` (numeric: standardized with the training split's
mean and std, a missing cell filled with the training median; text: one-hot, or one index per
column), applied as training applied them.

Training's side is ``plugins/datasets/csv_table.py`` (``encode_columns``); this one imports neither
it nor anything but numpy and the standard library, so it ships to a device. The test
``tests/tflite/test_tables.py`` holds the two to the same numbers and the same missing-cell texts.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

__all__ = ["MISSING", "MISSING_CATEGORY", "encode_rows", "read_rows", "standardize", "table_columns"]

MISSING = ("", "na", "n/a", "nan", "null")  # cell texts read as missing, compared lower-cased
MISSING_CATEGORY = "<missing>"  # the category a missing text cell becomes


def table_columns(metadata: dict | None) -> list[dict] | None:
    """The column encodings a model's metadata records (``preprocessing.columns``), or None."""
    columns = ((metadata or {}).get("preprocessing") or {}).get("columns")
    if isinstance(columns, list) and columns and all(isinstance(c, dict) and "kind" in c for c in columns):
        return columns
    return None


def read_rows(path: str | Path) -> tuple[list[str], list[list[str]]]:
    """``(header, rows)`` of a UTF-8 CSV file with a header row (blank lines skipped); a ValueError
    naming the file and line for a row whose field count is not the header's."""
    header, rows = None, []
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if header is None:
                header = [c.strip() for c in row]
            elif len(row) != len(header):
                raise ValueError(f"{path} line {reader.line_num}: {len(row)} fields, expected {len(header)}")
            else:
                rows.append([c.strip() for c in row])
    if header is None or not rows:
        raise ValueError(f"{path}: no rows (a CSV file with a header row and one row per sample)")
    return header, rows


def encode_rows(header: list[str], rows: list[list[str]], columns: list[dict], source: str = "input") -> np.ndarray:
    """float32 ``(rows, inputs)``: each row encoded as training encoded its table. ``header`` must
    name every column the model was trained on (others, the target among them, are ignored)."""
    missing = [c["name"] for c in columns if c["name"] not in header]
    if missing:
        raise ValueError(
            f"{source}: no column {', '.join(map(repr, missing))} in its header; the model takes the columns "
            f"{', '.join(c['name'] for c in columns)}"
        )
    blocks = []
    for column in columns:
        cells = [row[header.index(column["name"])] for row in rows]
        blocks.append(_encode_column(cells, column, source))
    return np.concatenate(blocks, axis=1).astype(np.float32)


def _encode_column(cells: list[str], column: dict, source: str) -> np.ndarray:
    if column["kind"] == "numeric":
        try:
            numbers = np.array([column["fill"] if _missing(c) else float(c) for c in cells], np.float64)
        except ValueError:
            bad = next(c for c in cells if not _missing(c) and not _is_number(c))
            raise ValueError(f"{source}: column {column['name']!r} holds {bad!r}, not a number") from None
        return ((numbers - column["mean"]) / column["std"])[:, None]
    index = {c: i for i, c in enumerate(column["categories"])}
    codes = np.array([index.get(MISSING_CATEGORY if _missing(c) else c, -1) for c in cells])
    if column["kind"] == "onehot":  # a category the training split lacked: all zeros
        return (codes[:, None] == np.arange(len(index))).astype(np.float64)
    return (codes + 1)[:, None].astype(np.float64)  # index: 0 = unseen


def standardize(x: np.ndarray, columns: list[dict], source: str = "input") -> np.ndarray:
    """A numeric array of raw column values, one per column in training's order, standardized as
    training did; a ValueError where a column is a category (those need the .csv rows)."""
    text = [c["name"] for c in columns if c["kind"] != "numeric"]
    if text:
        raise ValueError(
            f"{source}: column(s) {', '.join(map(repr, text))} are categories, encoded from their text: "
            "give the raw rows as a .csv file with a header row"
        )
    x = np.asarray(x, np.float64)
    if x.shape[-1:] != (len(columns),):
        raise ValueError(f"{source}: expected {len(columns)} raw column values per sample, received shape {x.shape}")
    mean = np.array([c["mean"] for c in columns])
    std = np.array([c["std"] for c in columns])
    return ((x - mean) / std).astype(np.float32)


def _missing(cell: str) -> bool:
    return cell.strip().lower() in MISSING


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True
