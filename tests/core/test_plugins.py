"""core.plugins: one load path; broken, misspelled and conflicting plugins are recorded, not fatal."""

import pytest

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
    assert host.describe()["conflicts"] == [{"kind": "architecture", "name": "tiny", "plugins": ["one", "two"]}]


def test_disabled_plugin_is_skipped(write_plugin):
    path = write_plugin("one", GOOD)
    host = PluginHost([str(path)], builtins=(), entry_points=False, disabled={"one"})
    assert "one" not in host.plugins and host.registry("architecture").names() == []


def test_unknown_name_suggests_closest():
    host = PluginHost(entry_points=False, disabled=())
    with pytest.raises(UsageError, match=r"unknown architecture 'ccn' \(did you mean 'cnn'\?\); valid: .*cnn, .*mlp"):
        host.registry("architecture").get("ccn")


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
    host.add_commands(group)
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
