"""The plugin-author API is ``core.__all__``: plugins and examples use nothing else, and all of it is
documented and typed.

Imports are checked by reading the source (``ast``), not by importing it: nothing here imports keras.
Rules for code outside the core (``plugins/``, ``examples/``, the ``kerastack new`` templates): the
core is imported only as ``from core import NAME`` with ``NAME`` in ``core.__all__`` and not a
submodule. ``import core``, ``import core.x``, ``from core.x import y``, ``from core import *`` and
``importlib.import_module("core.x")`` are failures, naming the file, the line and the name.

Typing rule for the names in ``core.__all__``: a function annotates every parameter and its return;
a class annotates every parameter of its own ``__init__`` (a dataclass's fields) and the parameters
and return of its own public methods and properties. ``self``/``cls`` are exempt, and so are
``*args``/``**kwargs``: they forward whatever a plugin's function takes (``Entry.call``), where a
type says nothing. Constants and other objects need a docstring, not hints.
"""

import ast
import importlib
import importlib.util
import inspect
import string
from pathlib import Path

import pytest

import core

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "core" / "cli" / "templates" / "plugin"


def _outside_core_files():
    """Every file whose imports of ``core`` must keep to ``core.__all__``."""
    files = [p for top in ("plugins", "examples") for p in sorted((REPO / top).rglob("*.py"))]
    files = [p for p in files if "build" not in p.relative_to(REPO).parts]  # pip's copies, if any
    return files + sorted(TEMPLATES.glob("*.py.tmpl"))


class _Placeholders(dict):
    """``$name`` → ``name_placeholder``: a template renders to Python that parses as it will."""

    def __missing__(self, key):
        return f"{key}_placeholder"


def source_of(path):
    text = Path(path).read_text(encoding="utf-8")
    if path.name.endswith(".tmpl"):
        text = string.Template(text).substitute(_Placeholders())
    return text


def bad_core_imports(source, where, public=None):
    """``["FILE:LINE: ..."]``, one per use of the core other than ``from core import NAME`` with
    ``NAME`` in ``public`` (default ``core.__all__``) and not a submodule."""
    public = set(core.__all__ if public is None else public)
    found = []
    for node in ast.walk(ast.parse(source, filename=str(where))):
        for line, problem in _problems(node, public):
            found.append(f"{where}:{line}: {problem}")
    return found


def _problems(node, public):
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name == "core" or alias.name.startswith("core."):
                yield node.lineno, f"import {alias.name}: use `from core import NAME` (NAME in core.__all__)"
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        if node.module.startswith("core."):
            names = ", ".join(a.name for a in node.names)
            yield node.lineno, f"from {node.module} import {names}: {node.module} is not API; use `from core import`"
        elif node.module == "core":
            for alias in node.names:
                if alias.name == "*":
                    yield node.lineno, "from core import *: name what you use"
                elif _is_submodule(alias.name):
                    yield node.lineno, f"from core import {alias.name}: a module of the core, not API"
                elif alias.name not in public:
                    yield node.lineno, f"from core import {alias.name}: {alias.name!r} is not in core.__all__"
    elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
        name = getattr(node.func, "attr", getattr(node.func, "id", ""))
        target = node.args[0].value
        if name == "import_module" and isinstance(target, str) and (target == "core" or target.startswith("core.")):
            yield node.lineno, f"import_module({target!r}): use `from core import NAME`"


def _is_submodule(name):
    return importlib.util.find_spec(f"core.{name}") is not None if name.isidentifier() else False


@pytest.mark.parametrize("path", _outside_core_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_plugins_examples_and_templates_import_only_the_api(path):
    found = bad_core_imports(source_of(path), path.relative_to(REPO))
    if found:
        pytest.fail("\n".join(found), pytrace=False)


def test_the_scan_covers_plugins_examples_and_templates():
    names = {str(p.relative_to(REPO)) for p in _outside_core_files()}
    assert "plugins/deployment/tflite/exporter.py" in names
    assert "examples/kerastack-example/kerastack_example/__init__.py" in names
    assert {"architecture.py.tmpl", "dataset.py.tmpl", "exporter.py.tmpl"} <= {Path(n).name for n in names}


def test_the_scanner_catches_each_kind_of_bad_import():
    snippet = (
        "import core\n"  # 1
        "import core.files as f\n"  # 2
        "from core.runs import load_run\n"  # 3
        "from core import backend\n"  # 4
        "from core import batches, hookimpl\n"  # 5: batches is not API, hookimpl is
        "from core import *\n"  # 6
        "def load():\n"
        "    import importlib\n"
        "    return importlib.import_module('core.data')\n"  # 9
        "from core import Dataset, UsageError\n"  # fine
        "from corelib import x\n"  # another package
        "import numpy as np\n"
    )
    found = bad_core_imports(snippet, "snippet.py")
    assert [int(f.split(":")[1]) for f in found] == [1, 2, 3, 4, 5, 6, 9], found
    assert "snippet.py:5: from core import batches: 'batches' is not in core.__all__" in found
    assert "snippet.py:4: from core import backend: a module of the core, not API" in found
    assert bad_core_imports("from core import hookimpl\n", "ok.py") == []


def test_templates_render_with_placeholders():
    text = source_of(TEMPLATES / "architecture.py.tmpl")
    assert 'register("name_placeholder", build' in text and "$" not in text


# -- documented and typed ----------------------------------------------------------------------------
def _origins():
    """Public name → (module, name there), from core's table of where each name comes from."""
    return {name: tuple(origin.split(":")) for name, origin in core._ORIGINS.items()}


def attribute_docstring(source, name):
    """The string literal right after ``name = ...`` at the top level of ``source``, or None."""
    body = ast.parse(source).body
    for stmt, after in zip(body, body[1:]):
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [getattr(stmt, "target", None)]
        named = any(isinstance(t, ast.Name) and t.id == name for t in targets)
        if named and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant):
            return after.value.value if isinstance(after.value.value, str) else None
    return None


def docstring_problem(public, obj, origin):
    """Why ``obj`` (exported as ``public``) has no docstring of its own, or None."""
    if inspect.isclass(obj):
        doc = obj.__dict__.get("__doc__")
        if doc and doc.startswith(f"{obj.__name__}(") and hasattr(obj, "__dataclass_fields__"):
            return f"{public}: only the docstring @dataclass makes up"
    elif inspect.isroutine(obj):
        doc = obj.__doc__
    elif type(obj).__module__ != "builtins" and type(obj).__doc__:
        doc = type(obj).__doc__  # an object of a documented class (hookimpl, a pluggy marker)
    else:
        module, there = origin  # a constant: a string literal after its assignment
        doc = attribute_docstring(inspect.getsource(importlib.import_module(module)), there)
    return None if doc and doc.strip() else f"{public}: no docstring"


def _public_name_list():
    return list(core.__all__)


def test_all_is_what_core_exports():
    assert len(core.__all__) == len(set(core.__all__))
    missing = [n for n in core.__all__ if not hasattr(core, n)]
    assert not missing
    assert set(core.__all__) <= set(_origins())


@pytest.mark.parametrize("name", _public_name_list())
def test_every_public_name_has_a_docstring(name):
    problem = docstring_problem(name, getattr(core, name), _origins()[name])
    if problem:
        pytest.fail(problem, pytrace=False)


def test_docstring_check_can_fail():
    from dataclasses import dataclass

    @dataclass
    class Bare:
        x: int

    def undocumented(a: int) -> int:
        return a

    assert docstring_problem("Bare", Bare, None) == "Bare: only the docstring @dataclass makes up"
    assert docstring_problem("undocumented", undocumented, None) == "undocumented: no docstring"
    assert docstring_problem("B", (1, 2), ("core.backend", "BACKENDS")) is None
    assert docstring_problem("P", {"a": 1}, ("core.backend", "_PACKAGES")) == "P: no docstring"
    source = 'A = 1\n"""What A is."""\nB = 2  # a comment is no docstring\nC: int = 3\n"""C."""\nD = 4\n5\n'
    assert [attribute_docstring(source, n) for n in "ABCD"] == ["What A is.", None, "C.", None]


def _unannotated(func, where):
    """``["where(param)", "where -> return"]`` for what ``func``'s signature leaves untyped."""
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return []
    missing = [
        f"{where}({p.name})"
        for p in sig.parameters.values()
        if p.name not in ("self", "cls") and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.annotation is p.empty
    ]
    if sig.return_annotation is sig.empty:
        missing.append(f"{where} -> return")
    return missing


def missing_hints(public, obj):
    """Every parameter and return that ``obj`` (exported as ``public``) leaves unannotated."""
    if inspect.isroutine(obj):
        return _unannotated(obj, public)
    if not inspect.isclass(obj) or not obj.__module__.startswith("core"):
        return []  # constants and objects made elsewhere (hookimpl is pluggy's)
    missing = []
    for attr, member in vars(obj).items():
        if isinstance(member, property):
            if not attr.startswith("_") and member.fget is not None:
                missing += _unannotated(member.fget, f"{public}.{attr}")
            continue
        member = member.__func__ if isinstance(member, (staticmethod, classmethod)) else member
        if inspect.isfunction(member) and (attr == "__init__" or not attr.startswith("_")):
            missing += _unannotated(member, f"{public}.{attr}")
    return missing


@pytest.mark.parametrize("name", _public_name_list())
def test_every_public_name_is_typed(name):
    missing = missing_hints(name, getattr(core, name))
    if missing:
        pytest.fail(f"not annotated: {', '.join(missing)}", pytrace=False)


def test_hint_check_can_fail():
    class Thing:
        def __init__(self, a, b: int = 0, *args, **kwargs) -> None:
            pass

        def public(self, x: int):
            return x

        def _private(self, y):
            return y

        @property
        def size(self):
            return 1

    def typed(a: int, *rest, key: str = "", **more) -> int:
        return a

    Thing.__module__ = "core.fake"
    assert missing_hints("Thing", Thing) == ["Thing.__init__(a)", "Thing.public -> return", "Thing.size -> return"]
    assert missing_hints("typed", typed) == []
