"""core.engine.config: run.toml files and run.json records as configurations; flags override them."""

import json

import pytest
from conftest import one_line_error, read_json, run_cli
from hypothesis import given, settings
from hypothesis import strategies as st

from core.engine.config import load_config
from core.engine.options import make_options
from core.errors import UsageError
from core.params import coerce_options, parse_pairs


def write(tmp_path, text, name="run.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_toml_is_read_with_its_tables(tmp_path):
    config = load_config(
        write(
            tmp_path,
            """
        arch = "cnn"
        data = "digits"
        [hparams]
        filters = 8
        [training]
        epochs = 3
        [[export]]
        to = "tflite"
        options = { quantize = "int8" }
    """.replace("\n        ", "\n"),
        )
    )
    assert config["hparams"] == {"filters": 8} and config["training"] == {"epochs": 3}
    assert config["export"] == [{"to": "tflite", "options": {"quantize": "int8"}}]


@pytest.mark.parametrize(
    "text, message",
    [
        ('arch = "cnn"\nmodel = 3\n', "unknown key 'model'"),
        ("[training]\nepoch = 3\n", "unknown key training.'epoch' (did you mean 'epochs'?)"),
        ('[transfer]\nfreez = "backbone"\n', "unknown key transfer.'freez' (did you mean 'freeze'?)"),
        ("[[export]]\noptions = {}\n", "every [[export]] needs 'to'"),
        ("arch = \n", "not valid TOML"),
        ("hparams = 3\n", "'hparams' must be a table"),
    ],
)
def test_bad_files_name_key_and_file(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(UsageError) as err:
        load_config(path)
    assert str(path) in str(err.value) and message in str(err.value)


@pytest.mark.parametrize(
    "text, message",
    [
        ('arch = "cnn"\nepochs = 3\n', "unknown key 'epochs' at the top level: it belongs under [training]"),
        ('freeze = "backbone"\n', "'freeze' at the top level: it belongs under [transfer]"),
        ('to = "tflite"\n', "'to' at the top level: it belongs under [[export]]"),
        ('arch = "cnn"\nfilters = 8\n', "'filters' at the top level: it belongs under [hparams]"),
        ('data = "digits"\nvalidation = 0.2\n', "'validation' at the top level: it belongs under [data_options]"),
        ("epoch = 3\n", "unknown key 'epoch' (did you mean 'epochs' under [training]?)"),
        ('arhc = "cnn"\n', "unknown key 'arhc' (did you mean 'arch'?)"),
        ('arch = "nope"\nfilters = 8\n', "unknown key 'filters'; valid:"),  # unknown arch: no table to tell
        ('arch = "nope"\ndata = "digits"\ntest = 0.1\n', "'test' at the top level: it belongs under [data_options]"),
        ('data = "image_folder"\nbatch_size = 8\n', "'batch_size' at the top level: it belongs under [training] ("),
    ],
)
def test_misplaced_top_level_keys_name_their_table(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(UsageError) as err:
        load_config(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_run_record_replays_its_exports(tmp_path):
    record = {
        "architecture": {"name": "mlp", "options": {}},
        "dataset": {"name": "digits", "options": {}},
        "training": {"backend": "jax", "seed": 7, "epochs": 2, "callbacks": []},
        "plugins": [],
        "exports": [{"to": "tflite", "options": {"quantize": "int8"}}],
    }
    (tmp_path / "run.json").write_text(json.dumps(record))
    assert load_config(tmp_path)["export"] == [{"to": "tflite", "options": {"quantize": "int8"}}]
    record["exports"] = [{"options": {}}]
    (tmp_path / "run.json").write_text(json.dumps(record))
    with pytest.raises(UsageError, match="needs 'to'"):
        load_config(tmp_path)


def test_run_record_becomes_a_config(tmp_path):
    record = {
        "architecture": {"name": "mlp", "options": {"units": [16]}},
        "dataset": {"name": "digits", "options": {"seed": 2}},
        "training": {"backend": "jax", "seed": 7, "epochs": 2, "callbacks": [], "learning_rate": None},
        "transfer": None,
        "plugins": [],
    }
    (tmp_path / "run.json").write_text(json.dumps(record))
    config = load_config(tmp_path)  # a run directory works too
    assert (config["arch"], config["data"], config["backend"], config["seed"]) == ("mlp", "digits", "jax", 7)
    assert config["training"] == {"epochs": 2} and config["hparams"] == {"units": [16]}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=30), max_size=4))
def test_fuzz_option_text_only_raises_usage_errors(pairs):
    try:
        given_options = parse_pairs(pairs, "--hp")
        coerce_options(
            given_options,
            {"units": (64, 32), "rate": 0.1, "name": "x", "flag": False, "n": 3, "any": None},
            False,
            "architecture 'fuzz'",
            "hyperparameter",
        )
        make_options(dict(given_options.items()))
    except UsageError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_config_files_only_raise_usage_errors(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "run.toml"
    path.write_bytes(data)
    try:
        load_config(path)
    except UsageError:
        pass


@pytest.mark.slow
def test_config_and_reproduction_through_the_cli(tmp_path):
    config = write(
        tmp_path,
        'arch = "mlp"\ndata = "digits"\nseed = 4\n[hparams]\nunits = [32]\n'
        '[training]\nepochs = 2\noptimizer = "sgd"\n'
        '[[export]]\nto = "tflite"\n',
    )
    first = run_cli("train", "--config", config, "--out", tmp_path / "a", "--quiet")
    assert first.returncode == 0, first.stderr
    assert str(tmp_path / "a/export/tflite/model_float32.tflite") in first.stdout
    # A config's export does what `kerastack export` does, report included, and run.json keeps it.
    assert str(tmp_path / "a/export/tflite/report.md") in first.stdout
    assert {"report.md", "verify.json"} <= {p.name for p in (tmp_path / "a/export/tflite").iterdir()}
    assert read_json(tmp_path / "a/run.json")["exports"] == [{"to": "tflite", "options": {}}]
    assert "retracing" not in first.stderr, first.stderr  # verify + report reuse one loaded model
    again = run_cli("train", "--config", tmp_path / "a/run.json", "--out", tmp_path / "b", "--quiet")
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "b/export/tflite/report.md").exists()  # reproducing the run exports again
    assert read_json(tmp_path / "b/run.json")["exports"] == [{"to": "tflite", "options": {}}]
    a, b = read_json(tmp_path / "a/metrics.json"), read_json(tmp_path / "b/metrics.json")
    assert a["val_accuracy"] == b["val_accuracy"] and a["loss"] == b["loss"]
    override = run_cli("train", "--config", config, "--epochs", "1", "--out", tmp_path / "c", "--quiet")
    assert override.returncode == 0 and read_json(tmp_path / "c/metrics.json")["epochs"] == 1
    assert read_json(tmp_path / "c/run.json")["training"]["optimizer"] == "sgd"
    line = one_line_error(run_cli("train", "--config", tmp_path / "missing.toml"), 2)
    assert "missing.toml: cannot read" in line
