"""Reading, splitting and task inference shared by the file-based datasets (csv, text_csv, npz,
image_folder, text_folder). Not a plugin: modules starting with ``_`` are skipped by discovery."""

MISSING = ("", "na", "n/a", "nan", "null")  # cell texts read as missing, compared lower-cased
MAX_AUTO_CLASSES = 20  # task=auto: a numeric target with at most this many distinct integers is classes
TASKS = ("auto", "classification", "regression")
TAB = ("\\t", "tab")  # --data-opt delimiter=\t or delimiter=tab: a tab


def note(name, message):
    """One line on stderr: ``NAME: MESSAGE`` (what a dataset decided). Never stdout, which holds a
    command's result (``kerastack verify --json`` reads a run's dataset)."""
    import sys

    print(f"{name}: {message}", file=sys.stderr)


def warn(name, message):
    """One line on stderr: ``NAME: warning: MESSAGE`` (what a dataset changed or suspects in the data)."""
    import sys

    print(f"{name}: warning: {message}", file=sys.stderr)


def which_lines(lines, shown=5):
    """``"lines 4, 9 and 12"`` / ``"lines 4, 9, 12, 20, 31 and 7 more"``: file lines, the first few."""
    head = [str(n) for n in lines[:shown]]
    rest = len(lines) - len(head)
    if rest:
        return f"lines {', '.join(head)} and {rest} more"
    return f"line {head[0]}" if len(head) == 1 else f"lines {', '.join(head[:-1])} and {head[-1]}"


def is_missing(text):
    return text.strip().lower() in MISSING


def as_number(text):
    """The finite float a cell holds, or None."""
    try:
        number = float(text)
    except ValueError:
        return None
    return number if abs(number) != float("inf") and number == number else None


def existing_file(path, option, owner, what="file"):
    """``path`` as a Path to an existing file; a usage error naming ``option`` otherwise."""
    from pathlib import Path

    from core import UsageError

    if not path:
        raise UsageError(f"{owner}: option {option} is not set; give the {what} with --data-opt {option}=PATH")
    p = Path(path).expanduser()
    if not p.exists():
        raise UsageError(f"{owner}: option {option}={path!r}: no such file")
    if not p.is_file():
        raise UsageError(f"{owner}: option {option}={path!r} is a folder, expected a {what}")
    return p


def class_files(path, suffixes, owner, example, kind="files"):
    """``(files, labels, class_names)`` of a folder of class subfolders.

    Class names are the subfolder names of folder ``path``, sorted; a class's files are those whose
    suffix (any case) is one of ``suffixes``, anywhere under its folder, sorted. Hidden files and
    folders (a leading ``.``) are skipped. A missing or wrong ``path``, fewer than 2 classes or a
    class without files is a usage error; ``example`` names one expected file (``IMAGE.png``) and
    ``kind`` what the files are (``images``).
    """
    from core import UsageError

    folders = class_folders(path, owner, example)
    files, labels = [], []
    for label, folder in enumerate(folders):
        found = sorted(
            p
            for p in folder.rglob("*")
            if p.suffix.lower() in suffixes
            and p.is_file()
            and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        )
        if not found:
            raise UsageError(f"{owner}: class folder {folder} holds no {'/'.join(suffixes)} {kind}")
        files += found
        labels += [label] * len(found)
    return files, labels, tuple(d.name for d in folders)


def class_folders(path, owner, example):
    """The class subfolders of folder ``path``, sorted, at least 2 (see ``class_files``)."""
    from pathlib import Path

    from core import UsageError

    if not path:
        raise UsageError(
            f"{owner}: option path is not set; give the folder of class subfolders with --data-opt path=DIR"
        )
    root = Path(path).expanduser()
    if not root.exists():
        raise UsageError(f"{owner}: option path={path!r}: no such folder")
    if not root.is_dir():
        raise UsageError(f"{owner}: option path={path!r} is a file, expected a folder of class subfolders")
    folders = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not folders:
        raise UsageError(f"{owner}: {root} has no class subfolders; expected {root}/CLASS/{example}")
    if len(folders) < 2:
        raise UsageError(
            f"{owner}: {root} has 1 class subfolder ({folders[0].name!r}); classification needs at least 2"
        )
    return folders


def read_table(path, delimiter, owner):
    """``(header, rows, line_numbers)`` of a UTF-8 CSV file with a header row; blank lines skipped.

    A row whose field count differs from the header's, or a file that is not CSV text, is an error
    naming the file and the line.
    """
    import csv

    from core import KerastackError, UsageError

    p = existing_file(path, "path", owner, "CSV file")
    delimiter = "\t" if delimiter in TAB else delimiter
    if len(delimiter) != 1:
        raise UsageError(f"{owner}: option delimiter={delimiter!r}: expected one character, or tab")
    header, rows, lines = None, [], []
    try:
        with open(p, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f, delimiter=delimiter)
            for row in reader:
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                if header is None:
                    header = [c.strip() for c in row]
                    continue
                if len(row) != len(header):
                    raise KerastackError(
                        f"{owner}: {p} line {reader.line_num}: {len(row)} fields, expected {len(header)} "
                        f"(the header's columns; delimiter {delimiter!r})"
                    )
                rows.append([c.strip() for c in row])
                lines.append(reader.line_num)
    except OSError as exc:
        raise KerastackError(f"{owner}: cannot read {p}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise KerastackError(f"{owner}: {p} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise KerastackError(f"{owner}: {p} line {reader.line_num}: {exc}") from None
    if header is None:
        raise KerastackError(f"{owner}: {p} is empty; expected a header row, then one row per sample")
    duplicates = sorted({c for c in header if header.count(c) > 1})
    if duplicates:
        raise KerastackError(f"{owner}: {p}: duplicate column name(s) {', '.join(map(repr, duplicates))}")
    if not rows:
        raise KerastackError(f"{owner}: {p} has a header but no rows")
    return header, rows, lines


def column_index(header, name, option, path, owner):
    """The index of column ``name``; a usage error listing the columns otherwise."""
    from core import UsageError, did_you_mean

    if name not in header:
        raise UsageError(
            f"{owner}: option {option}={name!r}: no such column in {path}"
            f"{did_you_mean(name, header)}; columns: {', '.join(header)}"
        )
    return header.index(name)


def infer_task(values, task, what, path, lines, owner):
    """``task``, or for ``auto`` the task the target texts suggest (see ``load``)."""
    from core import UsageError

    numbers = [as_number(v) for v in values]
    if task == "regression":
        for number, value, line in zip(numbers, values, lines):
            if number is None:
                raise UsageError(f"{owner}: task=regression needs a numeric {what}; {path} line {line} holds {value!r}")
        return task
    if task == "auto":
        numeric = all(n is not None for n in numbers)
        integers = numeric and all(n == int(n) for n in numbers)
        few = integers and len(set(numbers)) <= MAX_AUTO_CLASSES
        task = "regression" if numeric and not few else "classification"
    return task


def encode_labels(values, what, owner):
    """``(class_names, int32 labels)`` of label texts: names sorted, by value where all are numbers."""
    import numpy as np

    from core import UsageError

    numbers = [as_number(v) for v in values]
    if all(n is not None for n in numbers):
        # "1.0" and "1" are the same class, named "1"
        values = [str(int(n)) if n == int(n) else str(n) for n in numbers]
        names = sorted(set(values), key=float)
    else:
        names = sorted(set(values))
    if len(names) < 2:
        raise UsageError(
            f"{owner}: {what} has {len(names)} class ({', '.join(map(repr, names))}); classification needs at least 2"
        )
    index = {name: i for i, name in enumerate(names)}
    return tuple(names), np.array([index[v] for v in values], dtype="int32")


def split_indices(n, fractions, seed, owner, what, labels=None):
    """Sorted index arrays ``(train, *one per fraction)`` of ``n`` samples, fixed by ``seed``.

    ``fractions`` maps split names to their shares, e.g. ``{"validation": 0.15, "test": 0.15}``;
    train keeps the rest. A share of 0 gives None (no such split). With ``labels``, each class is cut in these proportions (stratified). Bad
    fractions or an empty split are usage errors naming the options.
    """
    import numpy as np

    from core import UsageError
    from plugins.datasets._checks import check_fractions

    check_fractions(owner, **fractions)
    given = ", ".join(f"{name}={share}" for name, share in fractions.items())
    rng = np.random.default_rng(seed)
    labels = np.zeros(n, dtype=int) if labels is None else np.asarray(labels)
    groups = [rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)]
    sizes = np.array([len(g) for g in groups])
    taken = np.zeros_like(sizes)
    parts = [[] for _ in range(len(fractions) + 1)]
    for part, share in zip(parts[1:], fractions.values()):
        quota = np.minimum(quotas(sizes, share, rng), sizes - taken)
        part += [g[start : start + q] for g, start, q in zip(groups, taken, quota)]
        taken += quota
    parts[0] += [g[start:] for g, start in zip(groups, taken)]
    splits = tuple(np.sort(np.concatenate(p)) for p in parts)
    for name, split in zip(("train", *fractions), splits):
        if len(split) == 0 and fractions.get(name) != 0:
            raise UsageError(f"{owner}: {n} {what} are too few for {given}: the {name} split would be empty")
    unlearnable = len(groups) - len(np.unique(labels[splits[0]]))
    if unlearnable:
        warn(
            owner.split("'")[1] if "'" in owner else owner,
            f"{unlearnable} of {len(groups)} classes have all their {what} outside the train split (too few "
            f"to share with {given}): the model cannot learn them; is the label free text or an id?",
        )
    return (splits[0], *(None if share == 0 else s for s, share in zip(splits[1:], fractions.values())))


def take(rows, *arrays):
    """``tuple(a[rows] for a in arrays)``, or None for no split (``split_indices``'s share of 0)."""
    return None if rows is None else tuple(a[rows] for a in arrays)


def quotas(sizes, share, rng):
    """How many samples of each class go to a split of ``share``: the split's size rounded, each
    class's quota its exact share rounded down, the rest to the largest remainders (ties at random)."""
    import numpy as np

    exact = sizes * share
    quota = np.floor(exact).astype(int)
    extra = int(sizes.sum() * share + 0.5) - quota.sum()
    order = np.lexsort((rng.random(len(sizes)), quota - exact))
    quota[order[:extra]] += 1
    return quota
