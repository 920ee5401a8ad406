"""The kernel is the contract: ``import core`` loads no wing, and import-linter's kernel contract
lists every kernel module.

The kernel is the top-level modules of ``core/`` (what plugins are written against); a wing is a
package under it (``core/engine``, ``core/deploy``, ...). ``core/__init__.py`` imports each public
name on first use, so a plugin that imports ``hookimpl`` does not pay for the training stack.
"""

import ast
import tomllib
from pathlib import Path

import pytest
from conftest import run_python

import core

REPO = Path(__file__).resolve().parents[2]
CORE = REPO / "core"
WINGS = sorted(f"core.{p.parent.name}" for p in CORE.glob("*/__init__.py"))
KERNEL = sorted(f"core.{p.stem}" for p in CORE.glob("*.py") if p.stem != "__init__")
FRAMEWORKS = ("keras", "tensorflow", "jax", "torch")

# Prints which of the packages named in its arguments the code before it loaded.
LOADED = """
import sys
print(" ".join(p for p in sys.argv[1:] if any(m == p or m.startswith(p + ".") for m in sys.modules)))
"""


def loaded_after(code):
    """The wings and ML frameworks loaded in a fresh interpreter after running ``code``."""
    return run_python(code + LOADED, *WINGS, *FRAMEWORKS).stdout.split()


def test_the_wings_are_found():
    assert {"core.cli", "core.deploy", "core.engine", "core.runs", "core.testing"} <= set(WINGS), WINGS


def test_import_core_loads_no_wing():
    assert loaded_after("import core") == []


def test_what_a_plugin_imports_loads_no_wing():
    assert loaded_after("from core import hookimpl, Dataset, DataSpec, UsageError, atomic_path, is_pair") == []


def test_a_wing_name_loads_its_wing_on_first_use():
    loaded = loaded_after("import core\nassert 'load_run' not in vars(core)\ncore.load_run")
    assert "core.runs" in loaded and "core.engine" not in loaded and "core.deploy" not in loaded, loaded


def test_every_public_name_imports_and_is_listed():
    assert core.__all__ == list(core._ORIGINS)
    assert set(core.__all__) <= set(dir(core))
    for name in core.__all__:
        module, attr = core._ORIGINS[name].split(":")
        assert getattr(core, name) is getattr(__import__(module, fromlist=[attr]), attr), name
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        core.not_a_name  # noqa: B018


def test_type_checkers_see_the_same_names():
    """The ``if TYPE_CHECKING:`` imports of core/__init__.py name each public name at its origin."""
    tree = ast.parse((CORE / "__init__.py").read_text(encoding="utf-8"))
    blocks = [n for n in tree.body if isinstance(n, ast.If) and getattr(n.test, "id", "") == "TYPE_CHECKING"]
    assert len(blocks) == 1
    seen = {
        alias.asname or alias.name: f"{node.module}:{alias.name}"
        for node in blocks[0].body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert seen == core._ORIGINS


def test_the_kernel_contract_lists_every_kernel_module():
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    kernel = next(c for c in contracts if c["name"].startswith("The kernel imports nothing"))
    assert sorted(kernel["source_modules"]) == KERNEL
    assert set(WINGS) <= set(kernel["forbidden_modules"])
