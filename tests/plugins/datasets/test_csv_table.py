"""``csv``: your own table — encoding, train-only statistics, imputation, task inference, errors."""

import json

import numpy as np
import pytest
from conftest import one_line_error, run_cli

from core import KerastackError, PluginHost, UsageError
from core.data import check_dataset, spec_of
from plugins.datasets.csv_table import encode, load, split_indices

COLORS = ("red", "green", "blue")


def write_table(path, n=60, seed=0, missing=(), target="kind"):
    """A table of ``n`` rows: numeric ``age`` and ``income``, text ``color``, and a target column:
    ``kind`` (text, 2 classes), ``grade`` (3 integer classes) and ``price`` (real numbers).
    ``missing`` lists ``(row, column)`` cells to leave empty."""
    rng = np.random.default_rng(seed)
    lines = ["age,color,income,kind,grade,price"]
    for r in range(n):
        cells = {
            "age": str(int(rng.integers(18, 80))),
            "color": COLORS[r % 3],
            "income": f"{rng.normal(50, 10):.2f}",
            "kind": ("cat", "dog")[r % 2],
            "grade": str(r % 3 + 1),
            "price": f"{rng.normal(100, 30):.3f}",
        }
        for row, column in missing:
            if row == r:
                cells[column] = ""
        lines.append(",".join(cells[c] for c in ("age", "color", "income", "kind", "grade", "price")))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def table(tmp_path):
    return write_table(tmp_path / "table.csv")


def test_registered_as_csv_with_its_options(table):
    host = PluginHost(["plugins.datasets.csv_table"], builtins=(), entry_points=False, disabled=())
    entry = host.registry("dataset").get("csv")
    assert entry.defaults == {
        "path": "",
        "target": "",
        "task": "auto",
        "categorical": "onehot",
        "delimiter": ",",
        "ignore": "",
        "validation": 0.15,
        "test": 0.15,
        "seed": 0,
    }
    dataset = entry.call(**entry.options({"path": str(table), "target": "kind", "ignore": "grade,price"}))
    check_dataset(dataset, "csv")
    spec = spec_of(dataset)
    # age, income, and color one-hot over the 3 colors
    assert spec.input_shape == (5,) and spec.input_dtype == "float32"
    assert spec.task == "classification" and spec.class_names == ("cat", "dog") and spec.num_classes == 2


def test_splits_are_stratified_deterministic_and_cover_every_row(table):
    a = load(str(table), target="kind", ignore="grade,price", seed=4)
    b = load(str(table), target="kind", ignore="grade,price", seed=4)
    c = load(str(table), target="kind", ignore="grade,price", seed=5)
    assert [len(s[0]) for s in (a.train, a.validation, a.test)] == [42, 9, 9]
    for (xa, ya), (xb, yb) in zip((a.train, a.validation, a.test), (b.train, b.validation, b.test)):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
        assert ya.dtype == np.int32 and xa.dtype == np.float32
        assert abs(np.mean(ya) - 0.5) < 0.07  # both classes in every split, half and half
    assert not np.array_equal(a.test[0], c.test[0])


def test_numeric_columns_are_standardized_with_training_statistics_only(table):
    dataset = load(str(table), target="kind", ignore="grade,price")
    x_train = dataset.train[0][:, [0, 4]]  # age, income
    np.testing.assert_allclose(x_train.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(x_train.std(axis=0), 1, atol=1e-4)
    for x, _ in (dataset.validation, dataset.test):
        assert np.abs(x[:, [0, 4]].mean(axis=0)).max() > 0.05  # other statistics would centre these
    column = dataset.preprocessing["columns"][0]
    assert column["name"] == "age" and column["kind"] == "numeric"
    ages = np.array([int(line.split(",")[0]) for line in table.read_text().splitlines()[1:]])
    train_ages = dataset.train[0][:, 0] * column["std"] + column["mean"]
    assert column["mean"] == pytest.approx(train_ages.mean()) != pytest.approx(ages.mean())


def test_text_columns_are_one_hot_or_indices_with_categories_from_the_train_split(tmp_path):
    path = tmp_path / "t.csv"
    labels = [r % 2 for r in range(40)]
    rows = [f"{COLORS[r % 3]},{r},{'ab'[labels[r]]}" for r in range(40)]
    _, _, test_rows = split_indices(40, {"validation": 0.15, "test": 0.15}, 0, "", "", labels=labels)
    rows[test_rows[0]] = f"purple,{test_rows[0]},{'ab'[labels[test_rows[0]]]}"  # one unseen color
    path.write_text("color,n,label\n" + "\n".join(rows) + "\n")
    onehot = load(str(path), target="label")
    columns = onehot.preprocessing["columns"]
    assert (onehot.test[0][:, :3].sum(axis=1) == 0).sum() == 1  # the purple row: all zeros
    assert columns[0] == {"name": "color", "kind": "onehot", "categories": ["blue", "green", "red"]}
    x = onehot.train[0]
    assert x.shape[1] == 4 and set(np.unique(x[:, :3])) == {0.0, 1.0}
    assert np.all(x[:, :3].sum(axis=1) == 1)  # exactly one color per training row
    index = load(str(path), target="label", categorical="index")
    assert index.train[0].shape[1] == 2
    assert index.preprocessing["columns"][0]["kind"] == "index"
    assert set(np.unique(index.train[0][:, 0])) == {1.0, 2.0, 3.0}  # 0 is kept for unseen categories
    all_x = np.concatenate([s[0] for s in (index.train, index.validation, index.test)])
    assert (all_x[:, 0] == 0).sum() == 1  # the purple row


def test_missing_values_are_imputed_from_the_train_split_and_reported(tmp_path, capsys):
    path = write_table(tmp_path / "m.csv", missing=[(3, "age"), (10, "age"), (11, "color"), (5, "kind")])
    dataset = load(str(path), target="kind", ignore="grade,price")
    captured = capsys.readouterr()
    err = captured.err.splitlines()
    age = dataset.preprocessing["columns"][0]
    # Dropped rows are a warning on stderr that names them (the header is line 1, row 5 is line 7).
    assert f"csv: warning: dropped 1 of 60 rows with no value in target 'kind': {path} line 7" in err
    assert f"csv: imputed missing values: 2 in 'age' (median {age['fill']:g}), 1 in 'color' (as '<missing>')" in err
    # stdout is a command's result (`kerastack verify --json` loads the run's dataset): a loader says nothing there
    assert captured.out == ""
    assert sum(len(s[0]) for s in (dataset.train, dataset.validation, dataset.test)) == 59
    assert all(np.isfinite(s[0]).all() for s in (dataset.train, dataset.validation, dataset.test))


@pytest.mark.parametrize(
    "target, task, classes",
    [
        ("kind", "classification", ("cat", "dog")),  # text
        ("grade", "classification", ("1", "2", "3")),  # 3 distinct integers
        ("price", "regression", None),  # real numbers
        ("age", "regression", None),  # integers, but more than 20 distinct values
    ],
)
def test_task_auto_is_inferred_from_the_target(table, target, task, classes, capsys):
    dataset = load(str(table), target=target)
    assert dataset.task == task and dataset.class_names == classes
    assert f"target {target!r}: {task} (task=auto)" in capsys.readouterr().err
    y = dataset.train[1]
    if task == "regression":
        assert y.dtype == np.float32 and y.shape == (len(dataset.train[0]), 1)
    else:
        assert y.dtype == np.int32 and y.shape == (len(dataset.train[0]),)


def test_task_can_be_forced_and_numeric_classes_sort_by_value(tmp_path):
    path = tmp_path / "n.csv"
    path.write_text("x,y\n" + "\n".join(f"{i},{(2, 10, 1.0)[i % 3]}" for i in range(30)) + "\n")
    classes = load(str(path), target="y")
    assert classes.class_names == ("1", "2", "10")  # "1.0" and "1" are one class, sorted by value
    regression = load(str(path), target="y", task="regression")
    assert regression.task == "regression" and regression.train[1].dtype == np.float32


def test_encode_turns_a_new_row_into_the_same_inputs_as_load(tmp_path):
    path = write_table(tmp_path / "e.csv", missing=[(2, "income")])
    dataset = load(str(path), target="kind", ignore="grade,price")
    columns = json.loads(json.dumps(dataset.preprocessing["columns"]))  # survives model.json
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    rows = [dict(zip(header, line.split(","))) for line in lines[1:]]
    x = np.concatenate([dataset.train[0], dataset.validation[0], dataset.test[0]])
    encoded = np.array([encode(row, columns) for row in rows], dtype="float32")
    # load keeps split order; compare as sets of rows
    np.testing.assert_allclose(np.sort(encoded, axis=0), np.sort(x, axis=0), atol=1e-6)
    unseen = encode({"age": "", "color": "purple", "income": "50"}, columns)
    assert unseen[1:4] == [0.0, 0.0, 0.0]


def test_tab_delimiter(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("a\tb\tlabel\n" + "\n".join(f"{i}\t{i * 2}\t{i % 2}" for i in range(20)) + "\n")
    assert load(str(path), target="label", delimiter="tab").train[0].shape[1] == 2


def error(exc_type, **options):
    with pytest.raises(exc_type) as info:
        load(**options)
    message = str(info.value)
    assert "\n" not in message and message.startswith("dataset 'csv': ")
    return message


def test_errors_name_the_option_the_file_or_the_column(table, tmp_path):
    p = str(table)
    assert "option path is not set" in error(UsageError, target="kind")
    assert f"option path={str(tmp_path / 'no.csv')!r}: no such file" in error(
        UsageError, path=str(tmp_path / "no.csv"), target="kind"
    )
    assert "is a folder, expected a CSV file" in error(UsageError, path=str(tmp_path), target="kind")
    assert "option target is not set" in error(UsageError, path=p)
    message = error(UsageError, path=p, target="knd")
    assert (
        f"option target='knd': no such column in {p} (did you mean 'kind'?); "
        "columns: age, color, income, kind, grade, price" in message
    )
    assert "option ignore='nope': no such column" in error(UsageError, path=p, target="kind", ignore="nope")
    assert "option task='classify': valid: auto, classification, regression" in error(
        UsageError, path=p, target="kind", task="classify"
    )
    assert "option categorical='ordinal': valid: index, onehot" in error(
        UsageError, path=p, target="kind", categorical="ordinal"
    )
    assert "option delimiter=';;': expected one character" in error(UsageError, path=p, target="kind", delimiter=";;")
    assert (
        "options validation and test must be fractions in [0, 1) summing below 1 (0: no such split), got validation=0.6, test=0.5"
        in error(UsageError, path=p, target="kind", validation=0.6, test=0.5)
    )
    assert f"task=regression needs a numeric target 'kind'; {p} line 2 holds 'cat'" in error(
        UsageError, path=p, target="kind", task="regression"
    )


def test_bad_data_errors_name_the_file_and_line(tmp_path):
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b,label\n1,2,x\n3,4,y\n5,6\n")
    assert f"{ragged} line 4: 2 fields, expected 3" in error(KerastackError, path=str(ragged), target="label")
    one = tmp_path / "one.csv"
    one.write_text("a,label\n" + "\n".join(f"{i},same" for i in range(10)) + "\n")
    assert "target 'label' has 1 class ('same'); classification needs at least 2" in error(
        UsageError, path=str(one), target="label"
    )
    latin = tmp_path / "latin.csv"
    latin.write_bytes("a,label\n1,caf\u00e9\n".encode("latin-1"))
    assert f"{latin} is not UTF-8 text" in error(KerastackError, path=str(latin), target="label")
    empty = tmp_path / "empty.csv"
    empty.write_text("\n")
    assert f"{empty} is empty; expected a header row" in error(KerastackError, path=str(empty), target="label")
    few = tmp_path / "few.csv"
    few.write_text("a,label\n1,x\n2,y\n3,x\n")
    assert "3 rows are too few for validation=0.15, test=0.15: the validation split would be empty" in error(
        UsageError, path=str(few), target="label"
    )
    only_target = tmp_path / "only.csv"
    only_target.write_text("label\nx\ny\n")
    assert "has no feature columns besides target 'label'" in error(UsageError, path=str(only_target), target="label")


def test_cli_names_a_missing_target_column_and_lists_the_columns(table):
    # jax imports fastest; the error comes before any training
    proc = run_cli(
        "train",
        "--arch",
        "mlp",
        "--data",
        "csv",
        "--data-opt",
        f"path={table}",
        "--data-opt",
        "target=nope",
        env={"KERAS_BACKEND": "jax"},
    )
    line = one_line_error(proc, 2)
    assert line.startswith(f"kerastack: error: dataset 'csv': option target='nope': no such column in {table}")
    assert line.endswith("; columns: age, color, income, kind, grade, price")


@pytest.mark.slow
def test_cli_trains_an_mlp_on_a_csv_file(tmp_path):
    path = write_table(tmp_path / "train.csv", n=90, missing=[(4, "income")])
    out = tmp_path / "run"
    proc = run_cli(
        "train",
        "--arch",
        "mlp",
        "--data",
        "csv",
        "--data-opt",
        f"path={path}",
        "--data-opt",
        "target=kind",
        "--data-opt",
        "ignore=price",
        "--epochs",
        "2",
        "--quiet",
        "--backend",
        "jax",
        "--out",
        out,
        "--seed",
        "0",
        "--hp",
        "units=8",
    )
    assert proc.returncode == 0, proc.stderr
    assert "csv: imputed missing values: 1 in 'income'" in proc.stderr
    record = json.loads((out / "run.json").read_text())
    # age, income, grade (numeric), color one-hot (3)
    assert record["spec"]["input_shape"] == [6] and record["spec"]["class_names"] == ["cat", "dog"]
    assert record["dataset"]["options"] == {"path": str(path), "target": "kind", "ignore": "price"}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and 0 <= metrics["test_accuracy"] <= 1


def test_dropped_rows_are_named_by_line_the_first_few(tmp_path, capsys):
    path = write_table(tmp_path / "m.csv", missing=[(r, "kind") for r in (2, 4, 9, 20, 30, 41, 50)])
    load(str(path), target="kind", ignore="grade,price")
    assert warnings(capsys) == [
        f"csv: warning: dropped 7 of 60 rows with no value in target 'kind': {path} lines 4, 6, 11, 22, 32 and 2 more"
    ]


def write_reviews(path, n=60, target="kind"):
    """A table whose ``review`` column is free text (every row different) next to a 3-value ``color``."""
    lines = [f"review,color,{target}"] + [
        f"{('great', 'awful')[r % 2]} film number {r},{COLORS[r % 3]},{('cat', 'dog')[r % 2]}" for r in range(n)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    "categorical, encoded",
    [("onehot", "one-hot encoded into 42 inputs"), ("index", "encoded as indices of 42 categories")],
)
def test_a_free_text_column_is_named_with_its_distinct_values_and_what_to_do(tmp_path, capsys, categorical, encoded):
    path = write_reviews(tmp_path / "reviews.csv")
    dataset = load(str(path), target="kind", categorical=categorical)
    assert warnings(capsys) == [
        f"csv: warning: column 'review' holds 42 distinct values in 42 training rows, {encoded}: free text or ids? "
        "leave it out with --data-opt ignore=review, or for text use the text datasets (--data text_csv)"
    ]
    assert [c["name"] for c in dataset.preprocessing["columns"]] == ["review", "color"]  # still encoded, as asked
    load(str(path), target="kind", ignore="review")
    load(str(write_table(tmp_path / "plain.csv")), target="kind")  # a 3-value text column: no warning
    assert warnings(capsys) == []


def warnings(capsys):
    """The warnings said on stderr since the last look (the loader's notes, on stderr too, left out)."""
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("csv: warning:")]


def test_classes_with_no_training_rows_are_counted(tmp_path, capsys):
    """A target of unique texts: most classes have one row, and some land only in validation or test."""
    load(str(write_reviews(tmp_path / "reviews.csv")), target="review", ignore="kind")
    assert warnings(capsys) == [
        "csv: warning: 14 of 60 classes have all their rows outside the train split (too few to share with "
        "validation=0.15, test=0.15): the model cannot learn them; is the label free text or an id?"
    ]
