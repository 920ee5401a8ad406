import keyword
import re
import string
from importlib import resources
from pathlib import Path

import click

from core.errors import UsageError

KINDS = ("architecture", "dataset", "exporter")
NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
# What differs between the kinds in the generated README.
USAGE = {  # kind: (the function to edit, its command-line flag, a command that uses the plugin)
    "architecture": ("build", "--hp", "kerastack train --arch $name --data digits --epochs 5 --hp units=64"),
    "dataset": ("load", "--data-opt", "kerastack train --arch mlp --data $name --data-opt samples=2000"),
    "exporter": ("export", "--opt", "kerastack export RUN_DIR --to $name    # RUN_DIR/export/$name/weights.npz"),
}
TESTING = {
    "architecture": (
        "The test calls `core.testing.check_architecture`, which trains a couple of steps, reloads\n"
        "the model in TensorFlow and exports it to TFLite. It trains under TensorFlow only, to stay\n"
        'quick: set `BACKENDS` in the test to `("tensorflow", "jax", "torch")` to check all three.'
    ),
    "dataset": (
        "The tests load the data directly and check what kerastack checks before training\n"
        "(`core.data.check_dataset`), the shapes and that a seed gives the same data."
    ),
    "exporter": (
        "The tests call `export()` with a stand-in model, so they need no training; the test module\n"
        "says how to try it on a real run."
    ),
}


@click.group("new")
def command():
    """Create a new project piece from a template.

    \b
    Example:
      kerastack new plugin my_net --kind architecture
      kerastack-my-net/pyproject.toml
      ...
    """


@command.command("plugin")
@click.argument("name")
@click.option(
    "--kind", type=click.Choice(KINDS), default="architecture", show_default=True, help="What the plugin registers."
)
@click.option(
    "--out",
    default=".",
    show_default=True,
    type=click.Path(file_okay=False),
    help="The folder to create the package in.",
)
@click.pass_obj
def plugin(host, name, kind, out):
    """Write a ready-to-install plugin package OUT/kerastack-NAME/: pyproject.toml with the
    entry point, the module with the hook, a test and a README.

    NAME is the name the plugin registers (lowercase letters, digits, underscores); the package is
    kerastack-NAME (underscores as hyphens), the module kerastack_NAME.

    \b
    Example:
      kerastack new plugin my_net --kind architecture
      kerastack-my-net/pyproject.toml
      kerastack-my-net/README.md
      kerastack-my-net/kerastack_my_net/__init__.py
      kerastack-my-net/tests/test_my_net.py
      next: cd kerastack-my-net && pip install -e . && python -m pytest
    """
    for path in write_plugin(name, kind, out, host=host):
        click.echo(str(path))
    target = Path(out) / dist_name(name)
    click.echo(f"next: cd {target} && pip install -e . && python -m pytest")


def dist_name(name):
    return "kerastack-" + name.replace("_", "-")


def write_plugin(name, kind, out=".", host=None):
    """Write the package of a new ``kind`` plugin named ``name`` under ``out``; return its files.

    Refuses an invalid name, a name that ``host``'s plugins already use, and an existing folder.
    """
    if not NAME.fullmatch(name) or keyword.iskeyword(name):
        raise UsageError(
            f"plugin name {name!r}: use lowercase letters, digits and underscores, starting with a letter (at most 40)"
        )
    if kind not in KINDS:
        raise UsageError(f"--kind {kind!r}: valid: {', '.join(KINDS)}")
    if host is not None:
        _check_unused(host, name, kind)
    target = Path(out) / dist_name(name)
    if target.exists():
        raise UsageError(f"{target} already exists; choose another name or --out")
    module = "kerastack_" + name
    function, flag, usage = USAGE[kind]
    values = {
        "name": name,
        "kind": kind,
        "dist": dist_name(name),
        "module": module,
        "function": function,
        "flag": flag,
        "usage": string.Template(usage).substitute(name=name),
        "testing": TESTING[kind],
    }
    files = {
        "pyproject.toml": "pyproject.toml",
        "README.md": "README.md",
        f"{module}/__init__.py": f"{kind}.py",
        f"tests/test_{name}.py": f"test_{kind}.py",
    }
    templates = resources.files("core.cli") / "templates" / "plugin"
    written = []
    for relative, template in files.items():
        text = string.Template((templates / f"{template}.tmpl").read_text(encoding="utf-8")).substitute(values)
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def _check_unused(host, name, kind):
    """A plugin or a registered name already called ``name`` would clash once the package is installed."""
    if name in host.plugins:
        raise UsageError(f"plugin name {name!r} is taken by {host.plugins[name].label()}; choose another")
    registry = host.registry(kind)
    if name in registry.entries:
        raise UsageError(
            f"{kind} {name!r} is already registered by {registry.entries[name].plugin.label()}; choose another name"
        )
