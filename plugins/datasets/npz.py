"""``npz``: your own arrays, saved with ``numpy.savez`` as ``x_train``, ``y_train`` (and more)."""

from core import hookimpl

OWNER = "dataset 'npz'"
TASKS = ("auto", "classification", "regression")
SPLITS = {"train": "train", "validation": "val", "test": "test"}  # Dataset split → key suffix
KNOWN = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test", "class_names")


@hookimpl
def register_datasets(register):
    register(
        "npz",
        load,
        summary="your own arrays in a .npz file (--data-opt path=FILE): "
        "x_train, y_train[, x_val, y_val, x_test, y_test, class_names]",
    )


def load(path="", task="auto", validation=0.15, test=0.15, seed=0):
    """The file's splits as they are; a missing validation or test split is cut from the training
    arrays (fraction ``validation`` or ``test`` of them), stratified by class, fixed by ``seed``.

    Inputs: floating point and bool as float32, uint8 (images) as float32 divided by 255, other
    integers as int32 (token ids). ``task=auto`` is classification when ``class_names`` is given, the
    targets are text, or they hold at most 20 distinct integers; else regression (float32 targets of
    shape (n, 1) or (n, k)). Class labels are int32: integers 0..k-1 stay as they are, other labels
    are numbered in sorted order and named by their values. The file is read without pickle.
    """
    import numpy as np

    from core import Dataset, UsageError, choices_text
    from plugins.datasets._files import MAX_AUTO_CLASSES, existing_file, note, split_indices, take

    if task not in TASKS:
        raise UsageError(f"{OWNER}: option task={task!r}: valid: {choices_text(TASKS)}")
    arrays = read_arrays(existing_file(path, "path", OWNER, ".npz file"))
    splits = {s: (arrays[f"x_{key}"], _unbool(arrays[f"y_{key}"])) for s, key in SPLITS.items() if f"x_{key}" in arrays}
    names = class_names(arrays, path)
    ys = [y for _, y in splits.values()]
    if task == "auto":
        values = np.concatenate([y.ravel() for y in ys])
        numeric = values.dtype.kind in "biuf"
        distinct = len(np.unique(values))
        few = numeric and bool(np.all(np.mod(values, 1) == 0)) and distinct <= MAX_AUTO_CLASSES
        task = "classification" if names is not None or not numeric or few else "regression"
        note("npz", f"task=auto: {task} (targets {values.dtype}, {distinct} distinct values)")
    if task == "classification":
        names, labels = class_labels(ys, names, path)
        splits = {s: (x, y) for (s, (x, _)), y in zip(splits.items(), labels)}
    else:
        if names is not None:
            raise UsageError(f"{OWNER}: task=regression, but {path} has class_names")
        for s, (x, y) in splits.items():
            if y.dtype.kind not in "biuf":
                raise UsageError(f"{OWNER}: task=regression needs numeric targets; y_{SPLITS[s]} is {y.dtype}")
            splits[s] = (x, y.astype("float32").reshape(len(y), -1))
    splits = {s: (inputs(x, SPLITS[s]), y) for s, (x, y) in splits.items()}

    missing = {s: share for s, share in (("validation", validation), ("test", test)) if s not in splits}
    if missing:
        x, y = splits["train"]
        train, *cut = split_indices(
            len(x), missing, seed, OWNER, "training samples", labels=y if task == "classification" else None
        )
        splits["train"] = (x[train], y[train])
        splits.update({s: take(rows, x, y) for s, rows in zip(missing, cut)})
    return Dataset(**splits, task=task, class_names=names)


def read_arrays(path):
    """Every array of the file, checked: the keys a split needs, no objects, matching lengths."""
    import zipfile

    import numpy as np

    from core import KerastackError
    from plugins.datasets._files import note

    if not zipfile.is_zipfile(path):
        raise KerastackError(
            f"{OWNER}: {path} is not a .npz file (a zip archive of arrays); save one with "
            "numpy.savez(path, x_train=..., y_train=...)"
        )
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise KerastackError(f"{OWNER}: {path} is not a readable .npz file: {exc}") from None
    with archive:
        keys = list(archive.files)
        arrays = {}
        for key in keys:
            try:
                arrays[key] = archive[key]
            except ValueError as exc:  # numpy refuses object arrays without pickle
                raise KerastackError(
                    f"{OWNER}: {path}: array {key!r} holds Python objects ({exc}); "
                    "save numbers or text (a fixed-width string dtype)"
                ) from None
    for s in SPLITS.values():
        if s == "train" or f"x_{s}" in arrays or f"y_{s}" in arrays:
            check_pair(arrays, s, path, keys)
    unknown = sorted(set(keys) - set(KNOWN))
    if unknown:
        note("npz", f"ignored arrays {', '.join(unknown)} of {path}")
    return arrays


def check_pair(arrays, split, path, keys):
    """Both arrays of a split present, one row per sample, samples shaped like x_train's."""
    from core import KerastackError, UsageError

    x, y = f"x_{split}", f"y_{split}"
    holds = ", ".join(keys) or "nothing"
    for key in (x, y):
        if key not in arrays:
            raise UsageError(
                f"{OWNER}: {path} has no array {key!r}; it holds: {holds} (expected x_train, "
                "y_train and optionally x_val, y_val, x_test, y_test, class_names)"
            )
    x_shape, y_shape = arrays[x].shape, arrays[y].shape
    if not x_shape or not y_shape or x_shape[0] == 0:
        raise KerastackError(
            f"{OWNER}: {path}: {x} and {y} must hold one row per sample; got shapes {x_shape} and {y_shape}"
        )
    if x_shape[0] != y_shape[0]:
        raise KerastackError(f"{OWNER}: {path}: {x} has {x_shape[0]} rows but {y} has {y_shape[0]}")
    if x_shape[1:] != arrays["x_train"].shape[1:]:
        raise KerastackError(
            f"{OWNER}: {path}: {x} has samples of shape {x_shape[1:]} but x_train {arrays['x_train'].shape[1:]}"
        )


def inputs(x, split):
    """Model inputs of one split: float32, or int32 for integer ids; other dtypes are refused."""
    import numpy as np

    from core import KerastackError

    if x.dtype == np.uint8:
        return x.astype("float32") / 255.0
    if x.dtype.kind in "fb":
        return x.astype("float32")
    if x.dtype.kind in "iu":
        if x.size and (x.min() < np.iinfo("int32").min or x.max() > np.iinfo("int32").max):
            raise KerastackError(f"{OWNER}: x_{split} holds integers beyond int32")
        return x.astype("int32")
    raise KerastackError(f"{OWNER}: x_{split} has dtype {x.dtype}; expected numbers (float, int, uint8 or bool)")


def class_names(arrays, path):
    """The file's ``class_names`` as a tuple of str, or None."""
    from core import KerastackError

    names = arrays.get("class_names")
    if names is None:
        return None
    if names.ndim != 1 or names.dtype.kind not in "USiu" or len(names) < 2:
        raise KerastackError(
            f"{OWNER}: {path}: class_names must be a 1-D array of at least 2 names; "
            f"got shape {names.shape}, dtype {names.dtype}"
        )
    return tuple(str(n) for n in names)


def class_labels(ys, names, path):
    """``(class_names, [int32 labels per split])``; labels that fit no class are an error."""
    import numpy as np

    from core import KerastackError, UsageError

    for y in ys:
        if y.ndim != 1 and not (y.ndim == 2 and y.shape[1] == 1):
            raise KerastackError(
                f"{OWNER}: {path}: classification needs one label per sample; got targets "
                f"of shape {y.shape} (one-hot? save the class indices)"
            )
    ys = [y.reshape(-1) for y in ys]
    values = np.concatenate(ys)
    numeric = values.dtype.kind in "iuf"
    if numeric and not np.all(np.mod(values, 1) == 0):
        raise KerastackError(
            f"{OWNER}: {path}: class labels must be integers or text; the targets hold fractions (task=regression?)"
        )
    if names is not None:
        if not numeric or values.min() < 0 or values.max() >= len(names):
            found = f"{values.min():g}..{values.max():g}" if numeric else f"text labels ({values.dtype})"
            raise KerastackError(
                f"{OWNER}: {path}: labels must be 0..{len(names) - 1} for its {len(names)} class_names; found {found}"
            )
        return names, [y.astype("int32") for y in ys]
    classes = np.unique(values)
    if len(classes) < 2:
        raise UsageError(f"{OWNER}: {path}: the targets hold {len(classes)} class; classification needs at least 2")
    if numeric and np.array_equal(classes, np.arange(len(classes))):
        return tuple(str(int(c)) for c in classes), [y.astype("int32") for y in ys]
    names = tuple(str(int(c)) if numeric else str(c) for c in classes)
    return names, [np.searchsorted(classes, y).astype("int32") for y in ys]


def _unbool(y):
    return y.astype("int32") if y.dtype.kind == "b" else y
