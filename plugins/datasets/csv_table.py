"""``csv``: your own table, a CSV file with a header row; one column is the target.

The reading, splitting and task-inference helpers it shares with the other file-based datasets
live in ``_files``. The module is not named ``csv`` so that it never
hides the standard library's ``csv`` module, which it uses.
"""

from core import hookimpl
from plugins.datasets._files import (
    TASKS,
    as_number,
    column_index,
    encode_labels,
    infer_task,
    is_missing,
    note,
    read_table,
    split_indices,
    take,
    warn,
    which_lines,
)

MISSING_CATEGORY = "<missing>"
ENCODINGS = ("onehot", "index")
OWNER = "dataset 'csv'"
FREE_TEXT = 20  # a text column with more distinct values than this, most of them unique, is suspect


@hookimpl
def register_datasets(register):
    register(
        "csv",
        load,
        summary="your own CSV table (--data-opt path=FILE target=COLUMN), "
        "numeric columns standardized, text columns one-hot",
    )


def load(
    path="", target="", task="auto", categorical="onehot", delimiter=",", ignore="", validation=0.15, test=0.15, seed=0
):
    """Features as float32 with shape (inputs,); a split fixed by ``seed``, stratified by class.

    Numeric columns are standardized with the training split's mean and std; other columns are
    categories, one-hot (``categorical=onehot``; a category the training split lacks is all zeros)
    or one index per column (``categorical=index``: 0 = unseen, then the training categories in
    sorted order). Missing cells (empty, NA, N/A, NaN, null) take the training median of a numeric
    column or the category ``<missing>``; rows without a target are dropped (a warning names them;
    so does one for a text column of mostly unique values, free text or ids). ``ignore`` names
    columns to leave out (comma-separated), e.g. row ids. ``task=auto`` is classification when the
    target is not numeric or holds at most 20 distinct integers, else regression (float32 targets of
    shape (n, 1), original units). The encoding is attached as ``dataset.preprocessing``; ``encode``
    applies it to a new row.
    """
    from core import Dataset

    check_options(target, task, categorical)
    header, rows, lines = read_table(path, delimiter, OWNER)
    t, features = feature_columns(header, target, ignore, path)
    rows, lines = drop_unlabelled(rows, lines, t, target, path)
    asked = task
    task, class_names, y = encode_target([row[t] for row in rows], task, target, path, lines)
    train, val, tst = split_indices(
        len(rows),
        {"validation": validation, "test": test},
        seed,
        OWNER,
        "rows",
        labels=y if task == "classification" else None,
    )
    columns = describe_features(header, rows, features, train, categorical)
    x = encode_columns([[row[i] for row in rows] for i in features], columns)
    note(
        "csv",
        f"{len(rows)} rows, {len(features)} feature columns -> {x.shape[1]} inputs; "
        f"target {target!r}: {task}{' (task=auto)' if asked == 'auto' else ''}"
        + (f", {len(class_names)} classes" if class_names else ""),
    )
    dataset = Dataset(
        train=(x[train], y[train]),
        validation=take(val, x, y),
        test=take(tst, x, y),
        task=task,
        class_names=class_names,
    )
    dataset.preprocessing = {"columns": columns, "target": target}
    return dataset


def check_options(target, task, categorical):
    from core import UsageError, choices_text

    for name, value, valid in (("task", task, TASKS), ("categorical", categorical, ENCODINGS)):
        if value not in valid:
            raise UsageError(f"{OWNER}: option {name}={value!r}: valid: {choices_text(valid)}")
    if not target:
        raise UsageError(f"{OWNER}: option target is not set; name the column to predict with --data-opt target=COLUMN")


def feature_columns(header, target, ignore, path):
    """``(target index, feature indices)``: every column but the target and the ``ignore``d ones."""
    from core import UsageError

    ignored = [c.strip() for c in ignore.split(",") if c.strip()]
    for option, name in [("target", target)] + [("ignore", c) for c in ignored]:
        column_index(header, name, option, path, OWNER)
    t = header.index(target)
    features = [i for i, c in enumerate(header) if i != t and c not in ignored]
    if not features:
        raise UsageError(f"{OWNER}: {path} has no feature columns besides target {target!r}")
    return t, features


def drop_unlabelled(rows, lines, t, target, path):
    """``(rows, lines)`` without the rows whose target (column ``t``) is missing; says which."""
    kept = [r for r in range(len(rows)) if not is_missing(rows[r][t])]
    dropped = [lines[r] for r in range(len(rows)) if is_missing(rows[r][t])]
    if dropped:
        warn(
            "csv",
            f"dropped {len(dropped)} of {len(rows)} rows with no value in target {target!r}: {path} {which_lines(dropped)}",
        )
    return [rows[r] for r in kept], [lines[r] for r in kept]


def encode_target(y_text, task, target, path, lines):
    """``(task, class_names, y)``: int32 class indices, or float32 values of shape (n, 1)."""
    import numpy as np

    task = infer_task(y_text, task, f"target {target!r}", path, lines, OWNER)
    if task == "classification":
        class_names, y = encode_labels(y_text, f"target {target!r}", OWNER)
        return task, class_names, y
    return task, None, np.array([float(v) for v in y_text], dtype="float32")[:, None]


def describe_features(header, rows, features, train, categorical):
    """``describe_column`` of each feature column; says which columns had missing cells filled."""
    columns, imputed = [], []
    for i in features:
        values = [row[i] for row in rows]
        columns.append(describe_column(header[i], values, train, categorical))
        warn_free_text(columns[-1], len(train))
        missing = sum(map(is_missing, values))
        if missing:
            fill = columns[-1].get("fill")
            how = f"median {fill:g}" if fill is not None else f"as {MISSING_CATEGORY!r}"
            imputed.append(f"{missing} in {header[i]!r} ({how})")
    if imputed:
        note("csv", "imputed missing values: " + ", ".join(imputed))
    return columns


def warn_free_text(column, rows):
    """A text column with more than ``FREE_TEXT`` distinct values, most of them unique: one line on
    stderr, for a review or a comment column becomes one input per distinct text, without a word."""
    count = len(column.get("categories", ()))
    if count > FREE_TEXT and count > rows / 2:
        inputs = (
            f"one-hot encoded into {count} inputs"
            if column["kind"] == "onehot"
            else f"encoded as indices of {count} categories"
        )
        warn(
            "csv",
            f"column {column['name']!r} holds {count} distinct values in {rows} training rows, {inputs}: "
            f"free text or ids? leave it out with --data-opt ignore={column['name']}, or for text use the "
            "text datasets (--data text_csv)",
        )


def encode(row, columns):
    """The model input of one row (a dict: column name → cell text) as a list of floats, encoded the
    way ``load`` encoded the training data; ``columns`` is ``dataset.preprocessing["columns"]``.
    Pure Python, so that a device without numpy can prepare its inputs."""
    out = []
    for col in columns:
        value = row.get(col["name"], "")
        if col["kind"] == "numeric":
            number = col["fill"] if is_missing(value) else float(value)
            out.append((number - col["mean"]) / col["std"])
            continue
        value = MISSING_CATEGORY if is_missing(value) else value
        categories = col["categories"]
        if col["kind"] == "onehot":
            out.extend(1.0 if value == c else 0.0 for c in categories)
        else:
            out.append(float(categories.index(value) + 1) if value in categories else 0.0)
    return out


def describe_column(name, values, train, categorical):
    """How to encode one feature column, from its training rows: a JSON-able dict for ``encode``."""
    import numpy as np

    numbers = [as_number(v) for v in values]
    if all(n is not None or is_missing(v) for n, v in zip(numbers, values)):
        seen = [numbers[r] for r in train if numbers[r] is not None]
        fill = float(np.median(seen)) if seen else 0.0
        filled = np.array([fill if numbers[r] is None else numbers[r] for r in train])
        std = float(filled.std()) or 1.0
        return {"name": name, "kind": "numeric", "fill": fill, "mean": float(filled.mean()), "std": std}
    categories = sorted({MISSING_CATEGORY if is_missing(values[r]) else values[r] for r in train})
    return {"name": name, "kind": categorical, "categories": categories}


def encode_columns(columns_values, columns):
    """float32 matrix of all rows: ``encode`` for whole columns at once (numpy, same numbers)."""
    import numpy as np

    blocks = []
    for values, col in zip(columns_values, columns):
        if col["kind"] == "numeric":
            numbers = np.array([col["fill"] if is_missing(v) else float(v) for v in values])
            blocks.append(((numbers - col["mean"]) / col["std"])[:, None])
            continue
        index = {c: i for i, c in enumerate(col["categories"])}
        codes = np.array([index.get(MISSING_CATEGORY if is_missing(v) else v, -1) for v in values])
        if col["kind"] == "onehot":
            blocks.append(codes[:, None] == np.arange(len(index)))
        else:
            blocks.append((codes + 1)[:, None])
    return np.concatenate(blocks, axis=1).astype("float32")
