"""core.registry on its own: what ``register(...)`` accepts, how entries type their options, and the
errors a name that is unknown or registered twice gives. No plugin host, no plugin files."""

import json
from pathlib import Path

import pytest

from core.errors import KerastackError, UsageError
from core.plugins import PluginInfo
from core.registry import Entry, Registry, make_entry, trace

BUILTIN = PluginInfo("plugins.datasets.digits", "built-in", "plugins.datasets.digits")
MINE = PluginInfo("mine", "path", "/home/me/mine.py")
BROKEN = PluginInfo("bad", "module", "bad_plugin", error="ImportError: no module named foo")


def build(spec, units=8, rate=0.5, act="relu", flag=False, sizes=(16, 32), anything=None):
    return spec


def load(samples=600, seed=0):
    return samples, seed


def export(ctx, quantize="none"):
    return []


def report(run_dir, out_dir):
    return []


def arch(name="tiny", func=build, plugin=BUILTIN, **extra):
    return make_entry("architecture", plugin, name, func, "a summary", **extra)


# -- make_entry: what register() accepts -----------------------------------------------------------
@pytest.mark.parametrize("name", ["", ".hidden", "../up", "a/b", "a b", "-x", "é", 3, None, ("a",)])
def test_bad_names_are_refused(name):
    with pytest.raises(TypeError, match=r"architecture name must be a non-empty string .* got"):
        arch(name)


@pytest.mark.parametrize("name", ["a", "cnn_v2", "mobilenet-v3.small", "_private", "0"])
def test_good_names_are_kept(name):
    assert arch(name).name == name


@pytest.mark.parametrize("func", [42, "build", None, [build]])
def test_non_callables_are_refused(func):
    with pytest.raises(TypeError, match=rf"dataset 'x': expected a callable, got {type(func).__name__}"):
        make_entry("dataset", BUILTIN, "x", func)


def test_unknown_register_keywords_are_refused():
    with pytest.raises(TypeError, match=r"unexpected keyword\(s\) \['colour'\]; valid: \[\]"):
        make_entry("dataset", BUILTIN, "x", load, colour="red")
    with pytest.raises(TypeError, match=r"\['tasks'\]; valid: \['backend', 'report'\]"):
        make_entry("exporter", BUILTIN, "x", export, tasks=("regression",))
    # what each kind does take
    entry = make_entry("exporter", BUILTIN, "x", export, backend="tensorflow", report=report)
    assert entry.extra == {"backend": "tensorflow", "report": report}


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ({}, ("classification",)),
        ({"tasks": "regression"}, ("regression",)),
        ({"tasks": ["regression", "reconstruction"]}, ("regression", "reconstruction")),
        ({"tasks": ("generation",)}, ("generation",)),
    ],
)
def test_tasks_become_a_tuple(given, kept):
    assert arch(**given).extra["tasks"] == kept


def test_options_come_from_the_signature():
    entry = arch()
    assert entry.defaults == {
        "units": 8,
        "rate": 0.5,
        "act": "relu",
        "flag": False,
        "sizes": (16, 32),
        "anything": None,
    }
    assert not entry.accepts_any
    assert (entry.kind, entry.summary, entry.plugin, entry.func) == ("architecture", "a summary", BUILTIN, build)
    assert make_entry("dataset", BUILTIN, "d", load, None).summary == ""


def test_an_option_without_default_or_a_missing_positional_is_refused():
    def needs(spec, units):
        return spec

    with pytest.raises(TypeError, match="parameter 'units' of .*needs needs a default value"):
        arch(func=needs)
    with pytest.raises(TypeError, match="must take 1 positional argument"):
        arch(func=lambda: None)
    # datasets take no leading positional argument: the first one is an option
    with pytest.raises(TypeError, match="parameter 'path'"):
        make_entry("dataset", BUILTIN, "d", lambda path: path)


# -- Entry.options and Entry.call --------------------------------------------------------------------
def test_options_coerce_text_to_the_defaults_types():
    got = arch().options({"units": "16", "rate": "1e-3", "flag": "yes", "sizes": "8, 4", "anything": "none"})
    assert got == {"units": 16, "rate": 0.001, "flag": True, "sizes": (8, 4), "anything": None}
    assert type(got["sizes"]) is tuple
    assert arch().options({"units": 3, "act": "gelu"}) == {"units": 3, "act": "gelu"}
    assert arch().options(None) == {} and arch().options({}) == {}


def test_bad_options_are_usage_errors_naming_the_entry():
    with pytest.raises(
        UsageError, match=r"architecture 'tiny' has no hyperparameter 'unit' \(did you mean 'units'\?\)"
    ):
        arch().options({"unit": "4"})
    with pytest.raises(UsageError, match=r"architecture 'tiny': hyperparameter units='many': expected an integer"):
        arch().options({"units": "many"})
    with pytest.raises(UsageError, match=r"dataset 'd' has no option 'size'; valid: samples, seed"):
        make_entry("dataset", BUILTIN, "d", load).options({"size": 1})
    with pytest.raises(UsageError, match="expected true or false"):
        arch().options({"flag": "maybe"})


def test_keyword_arguments_catch_all_accepts_any_option():
    def flexible(ctx, quantize="none", **more):
        return []

    entry = make_entry("exporter", BUILTIN, "flex", flexible)
    assert entry.accepts_any and entry.defaults == {"quantize": "none"}
    assert entry.options({"quantize": "int8", "extra": "3", "ratio": "0.5", "on": "true", "obj": [1]}) == {
        "quantize": "int8",
        "extra": 3,
        "ratio": 0.5,
        "on": True,
        "obj": [1],
    }


def test_call_names_the_plugin_when_the_function_fails():
    def boom(spec, units=1):
        raise ValueError("bad shape")

    entry = arch(func=boom, plugin=MINE)
    with pytest.raises(KerastackError) as info:
        entry.call("spec", units=2)
    assert str(info.value) == (
        "architecture 'tiny' from plugin 'mine' (/home/me/mine.py) failed in boom(): ValueError: bad shape"
    )
    assert isinstance(info.value.__cause__, ValueError)


def test_call_passes_kerastack_errors_and_results_through():
    def usage(spec, units=1):
        raise UsageError("already one line")

    with pytest.raises(UsageError, match="^already one line$"):
        arch(func=usage).call("spec")
    assert arch().call("the spec", units=3) == "the spec"


def test_trace_prints_only_when_asked(monkeypatch, capsys):
    monkeypatch.delenv("KERASTACK_TRACE_PLUGINS", raising=False)
    trace("quiet")
    arch().call("spec")
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("KERASTACK_TRACE_PLUGINS", "1")
    arch().call("spec", units=4)
    err = capsys.readouterr().err
    assert err.startswith("kerastack: trace: calling architecture 'tiny' from plugin 'plugins.datasets.digits'")
    assert "build(units=4)" in err


# -- Registry ------------------------------------------------------------------------------------------
def registry(*entries, broken=()):
    reg = Registry("dataset", broken)
    for entry in entries:
        reg.add(entry)
    return reg


def dataset(name, plugin=BUILTIN):
    return make_entry("dataset", plugin, name, load)


def test_get_returns_the_entry_and_names_are_sorted():
    digits, mnist = dataset("digits"), dataset("mnist", MINE)
    reg = registry(mnist, digits)
    assert reg.get("digits") is digits and reg.get("mnist") is mnist
    assert reg.names() == ["digits", "mnist"]


def test_a_name_from_two_plugins_is_a_conflict_naming_both():
    reg = registry(dataset("digits"), dataset("digits", MINE), dataset("other"))
    assert reg.names() == ["digits", "other"]
    assert "digits" not in reg.entries and len(reg.conflicts["digits"]) == 2
    with pytest.raises(UsageError) as info:
        reg.get("digits")
    assert str(info.value) == (
        "dataset 'digits' is registered by both plugin 'plugins.datasets.digits' (built-in) and "
        "plugin 'mine' (/home/me/mine.py); disable one with KERASTACK_DISABLE_PLUGINS=NAME"
    )
    assert reg.get("other").name == "other"  # the conflict spoils only its own name


def test_a_third_registration_joins_the_conflict():
    third = PluginInfo("third", "module", "third_mod")
    reg = registry(dataset("digits"), dataset("digits", MINE), dataset("digits", third))
    assert [e.plugin.name for e in reg.conflicts["digits"]] == ["plugins.datasets.digits", "mine", "third"]
    with pytest.raises(UsageError, match=r"and plugin 'mine' \(/home/me/mine.py\) and plugin 'third' \(third_mod\)"):
        reg.get("digits")


def test_one_plugin_registering_a_name_twice_says_so():
    reg = registry(dataset("digits", MINE), dataset("digits", MINE))
    with pytest.raises(UsageError) as info:
        reg.get("digits")
    assert str(info.value) == (
        "dataset 'digits' is registered 2 times by plugin 'mine' (/home/me/mine.py); a plugin registers each name once"
    )


def test_unknown_name_guesses_and_lists_the_valid_ones():
    reg = registry(dataset("digits"), dataset("mnist"))
    with pytest.raises(UsageError) as info:
        reg.get("digit")
    assert str(info.value) == "unknown dataset 'digit' (did you mean 'digits'?); valid: digits, mnist"
    with pytest.raises(UsageError, match=r"^unknown dataset 'zzz'; valid: digits, mnist$"):
        reg.get("zzz")
    with pytest.raises(UsageError, match=r"^unknown dataset 'x'; valid: \(none\)$"):
        Registry("dataset").get("x")


def test_unknown_name_names_the_broken_plugins():
    reg = registry(dataset("digits"), broken=[BROKEN, MINE])
    with pytest.raises(UsageError) as info:
        reg.get("cifar")
    assert str(info.value).endswith("; broken plugins: plugin 'bad' (bad_plugin), plugin 'mine' (/home/me/mine.py)")
    assert reg.get("digits").name == "digits"  # known names do not mention them


class Odd:
    def __repr__(self):
        return "Odd()"


TMP_X, ODD = Path("/tmp/x"), Odd()


# -- describe --------------------------------------------------------------------------------------------
def test_describe_is_json_for_every_kind():
    def exporter(ctx, quantize="none", path=TMP_X, odd=ODD, sizes=(1, 2)):
        return []

    entry = make_entry("exporter", MINE, "fmt", exporter, "my format", backend="tensorflow", report=report)
    described = json.loads(json.dumps(entry.describe()))
    assert described == {
        "name": "fmt",
        "summary": "my format",
        "plugin": "mine",
        "backend": "tensorflow",
        "report": f"{__name__}.report",
        "options": {"quantize": "none", "path": repr(Path("/tmp/x")), "odd": "Odd()", "sizes": [1, 2]},
    }
    arch_described = json.loads(json.dumps(arch(tasks=("regression", "generation")).describe()))
    assert arch_described["tasks"] == ["regression", "generation"]
    assert arch_described["hyperparameters"]["sizes"] == [16, 32]
    assert json.loads(json.dumps(dataset("d").describe()))["options"] == {"samples": 600, "seed": 0}


def test_entry_owner():
    assert arch().owner == "architecture 'tiny'"
    assert isinstance(arch(), Entry)
