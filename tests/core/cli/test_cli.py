"""The command line: one-line errors with the right exit codes, plugin listing, no heavy imports."""

import json

import pytest
from conftest import one_line_error, read_json, run_cli, run_python

TYPO = """
    from core import hookimpl

    @hookimpl
    def register_dataset(register):
        pass
"""

BAD_ARGUMENT = """
    from core import hookimpl

    @hookimpl
    def register_datasets(regster):
        pass
"""

DUPLICATE = """
    from core import hookimpl

    @hookimpl
    def register_architectures(register):
        register("cnn", lambda spec: None, summary="a second cnn")
"""


def test_nothing_heavy_is_imported():
    """Importing core, every plugin module and building the whole CLI imports no ML framework."""
    proc = run_python("""
        import sys
        import core
        from core.cli import build_cli
        from core.cli.plugins_cmd import describe
        from core.plugins import PluginHost
        host = PluginHost()
        build_cli(host)
        describe(host)
        heavy = sorted(m for m in ("keras", "tensorflow", "jax", "torch", "tf_keras", "ai_edge_litert")
                       if m in sys.modules)
        print("HEAVY", heavy, [p.name for p in host.plugins.values()])
    """)
    assert "HEAVY [] " in proc.stdout
    assert "plugins.deployment.tflite" in proc.stdout


def test_help_and_plugins_import_nothing_heavy():
    proc = run_python("""
        import sys
        from core.cli import main
        for argv in (["--help"], ["plugins", "--json"], ["train", "--help"]):
            try:
                main(argv)
            except SystemExit as e:
                assert e.code == 0, (argv, e.code)
        print("HEAVY", [m for m in ("keras", "tensorflow", "jax", "torch") if m in sys.modules])
    """)
    assert "HEAVY []" in proc.stdout


def test_every_command_has_help():
    for command in ("run", "train", "export", "verify", "plugins", "runs", "report", "compare", "info", "new"):
        proc = run_cli(command, "--help")
        assert proc.returncode == 0 and "Example" in proc.stdout, (command, proc.stderr)


def test_plugins_json_lists_builtins_with_options():
    proc = run_cli("plugins", "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    by_name = {p["name"]: p for p in info["plugins"]}
    cnn = by_name["plugins.architectures.cnn"]
    assert cnn["origin"] == "built-in" and cnn["hooks"] == ["register_architectures"]
    (arch,) = cnn["registers"]["architecture"]
    assert arch["name"] == "cnn" and arch["tasks"] == ["classification"]
    assert arch["hyperparameters"]["filters"] == 16
    (exporter,) = by_name["plugins.deployment.tflite"]["registers"]["exporter"]
    assert exporter["backend"] == "tensorflow" and exporter["options"]["quantize"] == "none"


@pytest.mark.parametrize(
    "args, code, expected",
    [
        (
            ["train", "--arch", "cnnn", "--data", "digits"],
            2,
            "unknown architecture 'cnnn' (did you mean 'cnn'?); valid: ",
        ),
        (["train", "--arch", "cnn", "--data", "digit"], 2, "unknown dataset 'digit' (did you mean 'digits'?)"),
        (
            ["train", "--arch", "cnn", "--data", "digits", "--hp", "filtres=3"],
            2,
            "architecture 'cnn' has no hyperparameter 'filtres' (did you mean 'filters'?); valid: blocks, dense, dropout, filters",
        ),
        (
            ["train", "--arch", "cnn", "--data", "digits", "--hp", "filters=many"],
            2,
            "hyperparameter filters='many': expected an integer",
        ),
        (["train", "--arch", "cnn", "--data", "digits", "--hp", "filters"], 2, "--hp 'filters': expected NAME=VALUE"),
        (
            ["train", "--arch", "cnn", "--data", "digits", "--data-opt", "seeds=1"],
            2,
            "dataset 'digits' has no option 'seeds'",
        ),
        (
            ["train", "--arch", "cnn", "--data", "digits", "--backend", "mxnet"],
            2,
            "unknown backend 'mxnet'; valid: jax, tensorflow, torch",
        ),
        (["train", "--arch", "cnn", "--data", "digits", "--epochs", "0"], 2, "--epochs must be at least 1"),
        (["train", "--arch", "cnn", "--data", "digits", "--callback", "nope"], 2, "unknown callback 'nope'"),
        (["train", "--data", "digits"], 2, "--arch and --data are required (or --config FILE, or --resume RUN_DIR)"),
        (["train", "--arch", "cnn", "--data", "digits", "--epochs", "x"], 2, "'x' is not a valid integer"),
        (["frobnicate"], 2, "No such command 'frobnicate'"),
        (["export", "/nonexistent/run", "--to", "tflite"], 1, "/nonexistent/run: no such run directory"),
        (["verify", "/nonexistent/m.tflite", "--run", "/nonexistent/run"], 1, "no such run directory"),
    ],
)
def test_usage_and_failure_errors(args, code, expected):
    line = one_line_error(run_cli(*args), code)
    assert expected in line, line


def test_export_unknown_exporter_and_option(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(
        json.dumps({"dataset": {"name": "digits", "options": {}}, "training": {"backend": "tensorflow"}, "plugins": []})
    )
    line = one_line_error(run_cli("export", run, "--to", "tflight"), 2)
    assert "unknown exporter 'tflight' (did you mean 'tflite'?)" in line
    line = one_line_error(run_cli("export", run, "--to", "tflite", "--opt", "quantise=int8"), 2)
    assert "exporter 'tflite' has no option 'quantise' (did you mean 'quantize'?)" in line


def test_run_dir_without_model(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(
        json.dumps({"dataset": {"name": "digits", "options": {}}, "training": {"backend": "tensorflow"}, "plugins": []})
    )
    line = one_line_error(run_cli("export", run, "--to", "tflite"), 1)
    assert "model.keras: no such model file" in line


def test_broken_plugin_is_listed_and_does_not_take_cli_down(write_plugin):
    path = write_plugin("crashy", "raise RuntimeError('cannot start')\n")
    proc = run_cli("--plugin", path, "plugins")
    assert proc.returncode == 0, proc.stderr
    assert "crashy (" in proc.stdout and "BROKEN: RuntimeError: cannot start" in proc.stdout
    listing = json.loads(run_cli("plugins", "--json", "--plugin", path).stdout)
    (crashy,) = [p for p in listing["plugins"] if p["name"] == "crashy"]
    assert crashy["origin"] == "path" and crashy["error"] == "RuntimeError: cannot start"
    # A command that needs the missing name fails with one line naming the broken plugin.
    proc = run_cli("--plugin", path, "train", "--arch", "crashy_net", "--data", "digits")
    line = one_line_error(proc, 2)
    assert "unknown architecture 'crashy_net'" in line and "broken plugins: plugin 'crashy'" in line
    assert "warning: plugin 'crashy'" in proc.stderr


def test_misspelled_hook_is_reported(write_plugin):
    path = write_plugin("typo", TYPO)
    listing = json.loads(run_cli("plugins", "--json", "--plugin", path).stdout)
    (typo,) = [p for p in listing["plugins"] if p["name"] == "typo"]
    assert typo["error"] == "hook 'register_dataset' matches no kerastack hook (did you mean 'register_datasets'?)"
    listing = json.loads(run_cli("plugins", "--json", "--plugin", write_plugin("arg", BAD_ARGUMENT)).stdout)
    (arg,) = [p for p in listing["plugins"] if p["name"] == "arg"]
    assert "register_datasets(regster) Argument(s) {'regster'} are declared in the hookimpl" in arg["error"]


def test_duplicate_name_error_names_both(write_plugin):
    path = write_plugin("dupe", DUPLICATE)
    line = one_line_error(run_cli("train", "--arch", "cnn", "--data", "digits", "--plugin", path), 2)
    assert (
        "architecture 'cnn' is registered by both plugin 'plugins.architectures.cnn' (built-in) and plugin 'dupe'"
        in line
    )
    proc = run_cli("plugins", "--plugin", path)
    assert "CONFLICT: architecture 'cnn' registered by plugins.architectures.cnn and dupe" in proc.stdout


def test_plugins_env_var_and_disable(write_plugin):
    path = write_plugin("dupe", DUPLICATE)
    env = {"KERASTACK_PLUGINS": str(path), "KERASTACK_DISABLE_PLUGINS": "plugins.architectures.cnn"}
    listing = json.loads(run_cli("plugins", "--json", env=env).stdout)
    names = [p["name"] for p in listing["plugins"]]
    assert "dupe" in names and "plugins.architectures.cnn" not in names and not listing["conflicts"]


def test_debug_shows_traceback():
    proc = run_cli("--debug", "export", "/nonexistent/run", "--to", "tflite")
    assert proc.returncode == 1 and "Traceback" in proc.stderr


def test_trace_plugins_logs_loading_and_registration():
    proc = run_cli("--trace-plugins", "plugins")
    assert proc.returncode == 0
    assert (
        "kerastack: trace: loaded plugin 'plugins.architectures.cnn' (built-in): hooks register_architectures"
        in proc.stderr
    )
    assert "kerastack: trace: plugin 'plugins.architectures.cnn' (built-in) register_architectures: cnn" in proc.stderr


def test_train_summary_counts_epochs_in_english(capsys):
    """The line after a run: "1 epoch", "3 epochs" (it used to say "1 epochs")."""
    from types import SimpleNamespace

    from core.cli.train_cmd import _summary

    _summary(
        SimpleNamespace(
            path="runs/x",
            metrics={
                "loss": 0.25,
                "accuracy": 0.75,
                "epochs": 1,
                "backend": "jax",
                "seconds": 1.0,
                "trainable_params": 1,
                "total_params": 1,
            },
            record={},
        )
    )
    assert "loss 0.2500  accuracy 0.7500  (1 epoch," in capsys.readouterr().out  # no held-out split
    for epochs, said in ((1, "(1 epoch, jax,"), (3, "(3 epochs, jax,")):
        metrics = {
            "val_accuracy": 0.5,
            "epochs": epochs,
            "backend": "jax",
            "seconds": 1.0,
            "trainable_params": 10,
            "total_params": 12,
        }
        _summary(SimpleNamespace(path="runs/x", metrics=metrics, record={}))
        out = capsys.readouterr().out
        assert said in out and "val_accuracy 0.5000" in out, out
    # after --fine-tune-after 2: how many trained from epoch 3
    metrics["fine_tuned_params"] = 12
    _summary(SimpleNamespace(path="runs/x", metrics=metrics, record={"transfer": {"fine_tune_after": 2}}))
    assert "10 of 12 parameters trained, 12 from epoch 3)" in capsys.readouterr().out


def test_training_output_to_a_log_is_one_line_per_epoch(tmp_path):
    """stdout is not a terminal here (captured, as in CI or `| tee`): no progress-bar escape codes."""
    proc = run_cli(
        "train", "--arch", "mlp", "--data", "iris", "--hp", "units=8", "--epochs", "2", "--out", tmp_path / "run"
    )
    assert proc.returncode == 0, proc.stderr
    assert "\x1b[" not in proc.stdout and "\r" not in proc.stdout, proc.stdout[-500:]
    epochs = [line for line in proc.stdout.splitlines() if line.startswith("Epoch ")]
    assert epochs == ["Epoch 1/2", "Epoch 2/2"], proc.stdout[-1000:]
    assert "(2 epochs, tensorflow," in proc.stdout


def test_no_validation_split_follows_the_training_metric(tmp_path):
    """validation=0: no val_ metric is logged, so best.keras follows 'loss' (said, and recorded)."""
    proc = run_cli(
        "train",
        "--arch",
        "mlp",
        "--data",
        "iris",
        "--hp",
        "units=8",
        "--epochs",
        "2",
        "--data-opt",
        "validation=0",
        "--out",
        tmp_path / "run",
        "--quiet",
    )
    assert proc.returncode == 0, proc.stderr
    assert "has no validation split: best.keras and early stopping follow 'loss'" in proc.stderr
    assert read_json(tmp_path / "run/run.json")["training"]["monitor"] == "loss"
    assert (tmp_path / "run/best.keras").is_file()
