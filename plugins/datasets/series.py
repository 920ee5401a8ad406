"""``series``: one time series (a CSV's numeric columns, an .npz array, or a built-in noisy sine)
cut into windows for forecasting.

The series is cut in time order first (train, then validation, then test), then each part is
windowed on its own: no window straddles a cut, so no test value is ever an input or a target of a
training sample, and nothing is shuffled across the cuts. A sample's inputs are ``window``
consecutive steps of every column, ``(window, features)``; its targets the next ``horizon`` values of
the ``target`` column, ``(horizon,)``, in the series' own units (training standardizes them and the
model scales them back, see ``core/engine/targets.py``).
"""

from core import hookimpl

OWNER = "dataset 'series'"
# The built-in series: a sine of period 50 around 50 with amplitude 10, plus Gaussian noise of sd 1.
SINE = {"steps": 2000, "period": 50, "mean": 50.0, "amplitude": 10.0, "noise": 1.0, "seed": 0}


@hookimpl
def register_datasets(register):
    register(
        "series",
        load,
        summary="forecasting windows of a time series: a CSV's numeric columns or an .npz array "
        f"(--data-opt path=FILE target=COLUMN), else a built-in noisy sine ({SINE['steps']} steps, "
        f"period {SINE['period']}); time-ordered splits",
    )


def load(path="", target="", window=64, horizon=8, stride=1, validation=0.15, test=0.15, season=0, delimiter=","):
    """Windows as float32: inputs ``(n, window, features)``, targets ``(n, horizon)`` of column
    ``target`` (a CSV column name, an .npz array's column index; default the first column).

    The last ``test`` of the steps are the test part, the ``validation`` before them the validation
    part, the rest the training part (a share of 0: no such split). Windows start every ``stride``
    steps. ``season`` (steps per cycle, 0 = none) is for the seasonal-naive baseline; the built-in
    sine's is its period unless given. ``dataset.info`` holds ``target_index`` and ``season``."""
    from core import Dataset
    from plugins.datasets._checks import check_fractions, check_range
    from plugins.datasets._files import note

    check_fractions(OWNER, validation=validation, test=test)
    for name, value in (("window", window), ("horizon", horizon), ("stride", stride)):
        check_range(OWNER, name, value, 1)
    check_range(OWNER, "season", season, 0, why=" (steps per cycle; 0: none)")
    if path:
        columns, values, where = read_series(path, delimiter)
    else:
        columns, values, where = ["sine"], sine()[:, None], "built-in noisy sine"
        season = season or SINE["period"]
    t = target_index(columns, target, where)
    parts = time_parts(len(values), validation, test)
    splits = {
        name: None if part is None else windows(values[part], t, window, horizon, stride, name, where)
        for name, part in parts.items()
    }
    counts = ", ".join(f"{name} {len(s[0])}" for name, s in splits.items() if s is not None)
    note(
        "series",
        f"{where}: {len(values)} steps, {len(columns)} column(s), target {columns[t]!r}; "
        f"window {window}, horizon {horizon}, stride {stride} -> windows: {counts}",
    )
    return Dataset(**splits, task="forecasting", info={"target_index": t, "season": int(season)})


def sine():
    """The built-in series: ``SINE``'s noisy sine, the same every time (its own seed)."""
    import numpy as np

    steps = np.arange(SINE["steps"])
    noise = np.random.default_rng(SINE["seed"]).normal(0, SINE["noise"], SINE["steps"])
    return (SINE["mean"] + SINE["amplitude"] * np.sin(2 * np.pi * steps / SINE["period"]) + noise).astype("float32")


def read_series(path, delimiter):
    """``(column names, float32 array (steps, columns), file)`` of a CSV with a header row (every
    column numeric, every cell filled) or an .npz holding one array of shape (steps,) or (steps, columns)."""
    from plugins.datasets._files import existing_file

    p = existing_file(path, "path", OWNER, "CSV or .npz file")
    if p.suffix.lower() == ".npz":
        return (*read_npz(p), str(p))
    return (*read_csv(p, delimiter), str(p))


def read_csv(p, delimiter):
    import numpy as np

    from core import KerastackError
    from plugins.datasets._files import as_number, read_table, which_lines

    header, rows, lines = read_table(p, delimiter, OWNER)
    values = np.empty((len(rows), len(header)), dtype="float32")
    for c, name in enumerate(header):
        numbers = [as_number(row[c]) for row in rows]
        bad = [line for line, n in zip(lines, numbers) if n is None]
        if bad:
            first = rows[lines.index(bad[0])][c]
            raise KerastackError(
                f"{OWNER}: column {name!r} of {p} is not numeric: {len(bad)} cell(s) hold no finite number "
                f"({which_lines(bad)}, e.g. {first!r}); a series needs a number in every cell"
            )
        values[:, c] = numbers
    return header, values


def read_npz(p):
    import zipfile

    import numpy as np

    from core import KerastackError

    try:
        with np.load(p, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise KerastackError(f"{OWNER}: {p} is not a readable .npz file of numbers: {exc}") from None
    if len(arrays) != 1:
        raise KerastackError(
            f"{OWNER}: {p} holds {len(arrays)} arrays ({', '.join(arrays) or 'none'}); expected one, "
            "the series, of shape (steps,) or (steps, columns)"
        )
    ((key, array),) = arrays.items()
    if array.ndim not in (1, 2) or array.dtype.kind not in "biuf" or len(array) == 0:
        raise KerastackError(
            f"{OWNER}: {p}: array {key!r} has shape {array.shape} and dtype {array.dtype}; expected numbers "
            "of shape (steps,) or (steps, columns)"
        )
    values = array.astype("float32").reshape(len(array), -1)
    if not np.all(np.isfinite(values)):
        raise KerastackError(f"{OWNER}: {p}: array {key!r} holds NaN or inf")
    return [str(i) for i in range(values.shape[1])], values


def target_index(columns, target, where):
    """The index of column ``target`` (the first column when not given)."""
    from plugins.datasets._files import column_index

    return column_index(columns, str(target), "target", where, OWNER) if target != "" else 0


def time_parts(steps, validation, test):
    """``{"train": slice, "validation": slice or None, "test": slice or None}``: consecutive parts
    of ``steps`` steps, in time order, the last two ``validation`` and ``test`` of them (rounded)."""
    n_test, n_val = round(steps * test), round(steps * validation)
    end = steps - n_test - n_val
    return {
        "train": slice(0, end),
        "validation": slice(end, end + n_val) if validation else None,
        "test": slice(end + n_val, steps) if test else None,
    }


def windows(values, t, window, horizon, stride, split, where):
    """``(x, y)`` of one part: every ``stride``-th window of ``window`` steps of all columns, and the
    ``horizon`` values of column ``t`` that follow it."""
    import numpy as np

    from core import UsageError

    span = window + horizon
    larger = "lower options validation and test" if split == "train" else f"raise option {split}"
    if len(values) < span:
        raise UsageError(
            f"{OWNER}: the {split} part of {where} has {len(values)} steps, fewer than window + horizon "
            f"= {window} + {horizon}; lower options window or horizon, or {larger}"
        )
    starts = np.arange(0, len(values) - span + 1, stride)
    x = np.stack([values[s : s + window] for s in starts])
    y = np.stack([values[s + window : s + span, t] for s in starts])
    return x.astype("float32"), y.astype("float32")
