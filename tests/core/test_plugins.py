"""core.plugins: one load path; broken, misspelled and conflicting plugins are recorded, not fatal."""

import importlib
import json
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import read_json, run_python

from core.cli.plugin_commands import add_plugin_commands
from core.cli.plugins_cmd import describe
from core.errors import KerastackError, UsageError
from core.plugins import PluginHost, builtin_plugins

GOOD = """
    from core import hookimpl

    @hookimpl
    def register_architectures(register):
        register("tiny", build, summary="tiny", tasks=("classification", "regression"))

    def build(spec, units=8, rate=0.5, names=("a", "b")):
        raise RuntimeError("boom in build")
"""


def host_with(*paths, builtins=()):
    return PluginHost([str(p) for p in paths], builtins=builtins, entry_points=False, disabled=())


def test_builtins_load_and_register():
    host = PluginHost(entry_points=False, disabled=())
    assert [p.name for p in host.plugins.values()] == list(builtin_plugins())
    assert {"plugins.architectures.cnn", "plugins.datasets.digits", "plugins.deployment.tflite"} <= set(host.plugins)
    assert not host.broken
    assert {"cnn", "mlp"} <= set(host.registry("architecture").names())
    assert "digits" in host.registry("dataset").names()
    tflite = host.registry("exporter").get("tflite")
    assert tflite.extra["backend"] == "tensorflow"
    assert tflite.defaults["quantize"] == "none"


def test_path_plugin_registers_a_task(write_plugin):
    """A task is registered like any entry: attributed to its plugin, made on request."""
    source = (
        "from core import Task, hookimpl\n"
        "class Ranking(Task):\n"
        "    metric = ('ndcg', True)\n"
        "@hookimpl\n"
        "def register_tasks(register):\n"
        "    register('ranking', Ranking, summary='ordered scores')\n"
    )
    host = host_with(write_plugin("ranked", source))
    entry = host.registry("task").get("ranking")
    assert entry.plugin.name == "ranked" and entry.summary == "ordered scores"
    assert entry.call().metric == ("ndcg", True)


def test_path_plugin_registers_with_hparams_from_signature(write_plugin):
    host = host_with(write_plugin("good", GOOD))
    entry = host.registry("architecture").get("tiny")
    assert entry.plugin.origin == "path" and entry.plugin.name == "good"
    assert entry.defaults == {"units": 8, "rate": 0.5, "names": ("a", "b")}
    assert entry.extra["tasks"] == ("classification", "regression")
    assert entry.options({"units": "32", "names": "x,y,z"}) == {"units": 32, "names": ("x", "y", "z")}


def test_error_in_build_names_plugin(write_plugin):
    host = host_with(write_plugin("good", GOOD))
    entry = host.registry("architecture").get("tiny")
    with pytest.raises(
        KerastackError,
        match=r"architecture 'tiny' from plugin 'good' \(.*good.py\) "
        r"failed in build\(\): RuntimeError: boom in build",
    ):
        entry.call(None)


def test_import_failure_is_recorded(write_plugin):
    bad = write_plugin("broken", "import not_a_module_anywhere\n")
    host = host_with(bad, write_plugin("good", GOOD))
    assert host.plugins["broken"].error.startswith("ModuleNotFoundError: No module named 'not_a_module")
    assert host.registry("architecture").get("tiny")  # the others still work
    with pytest.raises(UsageError, match="broken plugins: plugin 'broken'"):
        host.registry("architecture").get("nothere")


def test_missing_plugin_file_is_recorded(tmp_path):
    host = host_with(tmp_path / "nope.py")
    assert "no such plugin file" in host.plugins["nope"].error


def test_misspelled_hook_marks_plugin_broken(write_plugin):
    typo = write_plugin(
        "typo",
        """
        from core import hookimpl

        @hookimpl
        def register_architecure(register):
            register("x", lambda spec: None)
    """,
    )
    host = host_with(typo)
    assert host.plugins["typo"].error == (
        "hook 'register_architecure' matches no kerastack hook (did you mean 'register_architectures'?)"
    )
    assert "x" not in host.registry("architecture").names()
    host.pm.check_pending()  # nothing left unverified


def test_duplicate_name_names_both_plugins(write_plugin):
    one = write_plugin("one", GOOD)
    two = write_plugin("two", GOOD)
    host = host_with(one, two)
    with pytest.raises(
        UsageError,
        match=r"architecture 'tiny' is registered by both plugin 'one' .* "
        r"and plugin 'two'",
    ):
        host.registry("architecture").get("tiny")
    assert describe(host)["conflicts"] == [{"kind": "architecture", "name": "tiny", "plugins": ["one", "two"]}]


def test_disabled_plugin_is_skipped(write_plugin):
    path = write_plugin("one", GOOD)
    host = PluginHost([str(path)], builtins=(), entry_points=False, disabled={"one"})
    assert "one" not in host.plugins and host.registry("architecture").names() == []


def test_unknown_name_suggests_closest():
    host = PluginHost(entry_points=False, disabled=())
    with pytest.raises(UsageError, match=r"unknown architecture 'cnnn' \(did you mean 'cnn'\?\); valid: .*cnn, .*mlp"):
        host.registry("architecture").get("cnnn")


@pytest.mark.parametrize(
    "source, error",
    [
        ("register('a', lambda spec, units: None)", "parameter 'units'.* needs a default"),
        ("register('', lambda spec: None)", "name must be a non-empty string"),
        ("register('a', 42)", "expected a callable"),
        ("register('a', lambda spec: None, colour='red')", "unexpected keyword"),
        ("raise ValueError('exploded')", "ValueError: exploded"),
    ],
)
def test_bad_registration_marks_plugin_broken(write_plugin, source, error):
    path = write_plugin(
        "bad",
        f"""
        from core import hookimpl

        @hookimpl
        def register_architectures(register):
            register("fine", lambda spec: None)
            {source}
    """,
    )
    host = host_with(path)
    assert host.registry("architecture").names() == []  # nothing half-registered
    assert host.plugins["bad"].error.startswith("register_architectures: ")
    import re

    assert re.search(error, host.plugins["bad"].error), host.plugins["bad"].error


def test_own_marker_without_core(write_plugin):
    path = write_plugin(
        "standalone",
        """
        import pluggy
        hookimpl = pluggy.HookimplMarker("kerastack")

        @hookimpl
        def register_datasets(register):
            register("blobs", lambda n=10: None, summary="blobs")
    """,
    )
    entry = host_with(path).registry("dataset").get("blobs")
    assert entry.defaults == {"n": 10} and entry.summary == "blobs"


def test_commands_hook_adds_subcommand(write_plugin):
    import click
    from click.testing import CliRunner

    path = write_plugin(
        "cmd",
        """
        import click
        from core import hookimpl

        @hookimpl
        def register_commands(cli):
            @cli.command()
            def hello():
                click.echo("hello from a plugin")
    """,
    )
    host = host_with(path)
    group = click.Group()
    add_plugin_commands(host, group)
    assert CliRunner().invoke(group, ["hello"]).output == "hello from a plugin\n"


def test_exporters_and_callbacks_register_with_their_options(write_plugin):
    path = write_plugin(
        "deploy",
        """
        from core import hookimpl

        @hookimpl
        def register_exporters(register):
            register("npz", export_npz, summary="weights as .npz", backend="jax")

        @hookimpl
        def register_callbacks(register):
            register("stop_at", lambda target=0.99: None, summary="stop at a target")

        def export_npz(ctx, compress=True):
            return []
    """,
    )
    host = host_with(path)
    npz = host.registry("exporter").get("npz")
    assert (npz.extra["backend"], npz.defaults, npz.summary) == ("jax", {"compress": True}, "weights as .npz")
    assert npz.options({"compress": "no"}) == {"compress": False}
    stop = host.registry("callback").get("stop_at")
    assert stop.defaults == {"target": 0.99}
    with pytest.raises(UsageError, match="callback 'stop_at' has no option 'targt'"):
        stop.options({"targt": "1"})


SIBLING_PLUGIN = """
    from core import hookimpl
    from {module} import width

    @hookimpl
    def register_architectures(register):
        register("sibling_net", lambda spec: width(), summary="uses a module beside it")
"""


@pytest.fixture
def clean_path(monkeypatch):
    """sys.path and the sibling modules a test imports are restored afterwards."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if not name.startswith(("core", "plugins", "kerastack_user_plugin_")):
            sys.modules.pop(name, None)


def test_path_plugin_imports_a_module_beside_it(tmp_path, clean_path):
    """Like a script, a --plugin file imports its folder's modules; the folder comes after kerastack's own."""
    folder = tmp_path / "my plugins"
    folder.mkdir()
    (folder / "sibling_helpers_x7.py").write_text("def width():\n    return 7\n")
    (folder / "sibling_plugin.py").write_text(textwrap.dedent(SIBLING_PLUGIN.format(module="sibling_helpers_x7")))
    host = host_with(folder / "sibling_plugin.py")
    assert not host.broken, host.broken
    assert host.registry("architecture").get("sibling_net").call(None) == 7
    core_entry = next(i for i, p in enumerate(sys.path) if (Path(p or ".") / "core" / "plugins.py").is_file())
    assert sys.path.index(str(folder)) > core_entry
    host_with(folder / "sibling_plugin.py")  # the host of another process step: the folder once
    assert sys.path.count(str(folder)) == 1


def test_module_beside_plugin_hidden_by_stdlib_is_named(tmp_path, clean_path):
    """A sibling json.py does not replace the standard library's json; the error says why it is not found."""
    (tmp_path / "json.py").write_text("def width():\n    return 3\n")
    (tmp_path / "stdlib_named.py").write_text(textwrap.dedent(SIBLING_PLUGIN.format(module="json")))
    host = host_with(tmp_path / "stdlib_named.py")
    error = host.plugins["stdlib_named"].error
    assert error.startswith("ImportError: cannot import name 'width' from 'json'"), error
    assert "the 'json' beside the plugin is not the one imported" in error and "rename it" in error
    assert json.__file__ != str(tmp_path / "json.py") and importlib.import_module("json") is json


SIBLING_LAYERS = """
import keras


@keras.saving.register_keras_serializable(package="sibling_layers")
class Halve(keras.layers.Layer):
    def call(self, x):
        return x * 0.5
"""

SIBLING_CONSTRAINTS = """
import keras


@keras.saving.register_keras_serializable(package="sibling_constraints")
class Clip(keras.constraints.Constraint):
    def __init__(self, limit=0.25):
        self.limit = limit

    def __call__(self, w):
        return keras.ops.clip(w, -self.limit, self.limit)

    def get_config(self):
        return {"limit": self.limit}
"""

SIBLING_ARCH = """
from core import hookimpl
from sibling_helpers import width  # imported with the plugin: what failed without PYTHONPATH


@hookimpl
def register_architectures(register):
    register("halved_mlp", build, summary="a Dense net with a layer from a module beside the plugin")


def build(spec):
    import keras
    from sibling_constraints import Clip  # keras code imported late, under the run's backend
    from sibling_layers import Halve

    x = keras.Input(spec.input_shape)
    dense = keras.layers.Dense(width(), activation="relu", kernel_constraint=Clip())
    h = Halve()(dense(keras.layers.Flatten()(x)))
    return keras.Model(x, keras.layers.Dense(spec.num_classes, activation="softmax")(h))
"""


@pytest.mark.slow
def test_plugin_with_modules_beside_it_trains_exports_and_verifies_from_elsewhere(tmp_path):
    """--plugin plug/my_plugin.py from one folder, its layer and constraint in modules beside it; export
    (a TensorFlow child process) and verify (a JAX process) from another folder."""
    plug, here, there = tmp_path / "plug", tmp_path / "here", tmp_path / "there"
    for folder in (plug, here, there):
        folder.mkdir()
    (plug / "sibling_helpers.py").write_text("def width():\n    return 8\n")
    (plug / "sibling_layers.py").write_text(SIBLING_LAYERS)
    (plug / "sibling_constraints.py").write_text(SIBLING_CONSTRAINTS)
    (plug / "my_plugin.py").write_text(SIBLING_ARCH)
    proc = run_python(
        """
        import os, sys
        import keras  # jax: the export runs in a TensorFlow child process
        from core import export, verify
        from core.cli import main
        here, there, run = sys.argv[1:]
        os.chdir(here)
        try:
            main(["--plugin", "../plug/my_plugin.py", "train", "--arch", "halved_mlp", "--data", "digits",
                  "--epochs", "1", "--seed", "0", "--out", run, "--quiet"])
        except SystemExit as exit:
            assert exit.code == 0, exit.code
        os.chdir(there)
        paths = export(run, "tflite")
        print("AGREEMENT", verify(paths[0], run)["agreement"])
    """,
        here,
        there,
        tmp_path / "run",
        env={"KERAS_BACKEND": "jax"},
    )
    record = read_json(tmp_path / "run" / "run.json")
    assert record["plugins"] == [str(plug / "my_plugin.py")] and record["custom_modules"] == [
        "sibling_constraints",
        "sibling_layers",
    ]
    assert float(proc.stdout.split("AGREEMENT ", 1)[1].split()[0]) >= 0.95
