"""Meta-tests that keep hook specs, documentation and tests in step."""

import inspect
from pathlib import Path

import pytest

from core import hookspecs
from core.plugins import HOOKS

REPO = Path(__file__).resolve().parents[2]
SPECS = [name for name, f in vars(hookspecs).items() if inspect.isfunction(f) and hasattr(f, "kerastack_spec")]


def test_specs_are_the_known_hooks():
    assert sorted(SPECS) == sorted(HOOKS)


@pytest.mark.parametrize("name", SPECS)
def test_every_hook_is_documented_with_an_example(name):
    doc = inspect.getdoc(getattr(hookspecs, name))
    assert doc and "Called" in doc and "Example::" in doc and name in doc, name
    assert f"`{name}`" in (REPO / "README.md").read_text(), f"README does not mention {name}"


@pytest.mark.parametrize("name", SPECS)
def test_every_hook_has_a_test(name):
    tests = (REPO / "tests" / "core" / "test_plugins.py").read_text()
    assert f"def {name}(" in tests, f"no plugin in tests/core/test_plugins.py implements {name}"
