"""``kerastack new plugin``: packages that install, register through their entry point and pass their
own tests."""

import json
import re
import subprocess
import sys
import tomllib

import pytest
from conftest import one_line_error, run_cli

from core import UsageError
from core.cli import new_cmd
from core.plugins import PluginHost

NAMES = {"architecture": "ks_new_arch", "dataset": "ks_new_data", "exporter": "ks_new_export"}
DEFAULTS = {
    "architecture": {"units": 32, "dropout": 0.0},
    "dataset": {"samples": 600, "features": 8, "classes": 3, "seed": 0},
    "exporter": {"compressed": True},
}


@pytest.mark.parametrize("kind", new_cmd.KINDS)
def test_generated_package(tmp_path, kind):
    name = NAMES[kind]
    files = new_cmd.write_plugin(name, kind, tmp_path)
    root = tmp_path / f"kerastack-{name.replace('_', '-')}"
    assert [p.relative_to(root).as_posix() for p in files] == [
        "pyproject.toml",
        "README.md",
        f"kerastack_{name}/__init__.py",
        f"tests/test_{name}.py",
    ]
    for path in files:
        text = path.read_text()
        assert "$" not in text, path  # every placeholder filled
        if path.suffix == ".py":
            compile(text, str(path), "exec")
    project = tomllib.loads((root / "pyproject.toml").read_text())
    assert project["project"]["name"] == root.name
    assert project["project"]["entry-points"]["kerastack"] == {name: f"kerastack_{name}"}
    # The module registers its name with its options, loaded here as a --plugin file (no install).
    host = PluginHost([str(root / f"kerastack_{name}" / "__init__.py")], entry_points=False)
    entry = host.registry(kind).get(name)
    assert entry.defaults == DEFAULTS[kind] and entry.summary


def test_command_and_its_refusals(tmp_path, write_plugin):
    proc = run_cli("new", "plugin", "tiny_net", "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr
    target = tmp_path / "kerastack-tiny-net"
    assert proc.stdout.splitlines()[-1] == f"next: cd {target} && pip install -e . && python -m pytest"
    line = one_line_error(run_cli("new", "plugin", "tiny_net", "--out", tmp_path), 2)
    assert f"{tmp_path / 'kerastack-tiny-net'} already exists" in line
    line = one_line_error(run_cli("new", "plugin", "Tiny-Net", "--out", tmp_path), 2)
    assert "plugin name 'Tiny-Net': use lowercase letters, digits and underscores" in line
    taken = write_plugin("taken", "")
    host = PluginHost([str(taken)])
    for bad in ("tiny-net", "1net", "class", "x" * 41, ""):
        with pytest.raises(UsageError, match=f"plugin name {bad!r}: use lowercase letters"):
            new_cmd.write_plugin(bad, "architecture", tmp_path, host=host)
    with pytest.raises(
        UsageError,
        match=r"architecture 'cnn' is already registered by plugin "
        r"'plugins.architectures.cnn' \(built-in\); choose another name",
    ):
        new_cmd.write_plugin("cnn", "architecture", tmp_path, host=host)
    with pytest.raises(UsageError, match=re.escape(f"plugin name 'taken' is taken by plugin 'taken' ({taken})")):
        new_cmd.write_plugin("taken", "dataset", tmp_path, host=host)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kerastack-tiny-net", "taken.py"]


def _pip(*args):
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.mark.slow
def test_generated_plugins_install_and_pass_their_own_tests(tmp_path):
    """Each kind's package installs (editable), is found through its entry point and passes its own
    tests; the architecture's test trains and exports under TensorFlow through check_architecture."""
    dists = [f"kerastack-{name.replace('_', '-')}" for name in NAMES.values()]
    _pip("uninstall", "--quiet", "-y", *dists)  # left over by an interrupted run
    roots = []
    for kind, name in NAMES.items():
        new_cmd.write_plugin(name, kind, tmp_path)
        roots.append(tmp_path / f"kerastack-{name.replace('_', '-')}")
    try:
        _pip(
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            *[arg for root in roots for arg in ("-e", str(root))],
        )
        for root in roots:
            proc = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                cwd=root,
                capture_output=True,
                text=True,
                timeout=900,
            )
            assert proc.returncode == 0, f"{root.name}:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}"
        listing = json.loads(run_cli("plugins", "--json").stdout)
        by_name = {p["name"]: p for p in listing["plugins"]}
        for (kind, name), dist in zip(NAMES.items(), dists):
            plugin = by_name[name]
            assert (plugin["origin"], plugin["package"], plugin["version"]) == ("package", dist, "0.1.0")
            assert "error" not in plugin and [e["name"] for e in plugin["registers"][kind]] == [name]
    finally:
        _pip("uninstall", "--quiet", "-y", *dists)
