"""``kerastack info``: versions, backends with their devices, plugins — compact, for bug reports."""

import json

import pytest
from conftest import run_cli

from core.cli import info_cmd


def test_info_without_devices_is_compact(write_plugin):
    crashy = write_plugin("crashy", "raise RuntimeError('cannot start')\n")
    proc = run_cli("--plugin", crashy, "info", "--no-devices", env={"KERAS_BACKEND": "jax"})
    assert proc.returncode == 0, proc.stderr
    assert "warning" not in proc.stderr  # info shows broken plugins itself
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("kerastack 0.1.0 (") and "Python 3." in lines[0]
    assert lines[1].startswith("keras 3.") and "ai-edge-litert " in lines[1]
    assert lines[2] == "backend jax (KERAS_BACKEND)"
    assert lines[3].startswith("tensorflow 2.") and " jax 0." in lines[3] and " torch 2." in lines[3]
    assert lines[4].startswith("env ") and "KERAS_BACKEND=jax" in lines[4]
    assert lines[5].startswith("plugins: ") and lines[5].endswith(" loaded, 1 broken")
    assert lines[6] == f"  plugin 'crashy' ({crashy}): RuntimeError: cannot start"
    assert len(lines) == 7


def test_info_json():
    proc = run_cli("info", "--json", "--no-devices")
    info = json.loads(proc.stdout)
    assert info["kerastack"]["version"] == "0.1.0" and info["packages"]["keras"].startswith("3.")
    assert info["backends"]["tensorflow"]["installed"] is True and "devices" not in info["backends"]["tensorflow"]
    assert info["plugins"]["loaded"] >= 10 and info["plugins"]["broken"] == []


def test_probe_failures_are_reported_not_raised(monkeypatch):
    monkeypatch.setattr(
        info_cmd,
        "PROBES",
        {
            "tensorflow": "raise ImportError('libcudart.so.12: cannot open shared object file')",
            "jax": "import time\ntime.sleep(30)",
            "torch": "info = {'version': 'x', 'devices': ['CPU', 'GPU 0: Fake']}",
        },
    )
    found = info_cmd.probe_backends(timeout=3)
    assert found["tensorflow"]["error"] == (
        "import failed: ImportError: libcudart.so.12: cannot open shared object file"
    )
    assert found["jax"]["error"] == "listing devices timed out after 3 s"
    assert found["torch"]["devices"] == ["CPU", "GPU 0: Fake"]


@pytest.mark.slow
def test_info_lists_devices_of_every_backend():
    proc = run_cli("info")
    assert proc.returncode == 0, proc.stderr
    lines = {line.split()[0]: line for line in proc.stdout.splitlines()}
    for backend in ("tensorflow", "jax", "torch"):
        assert "CPU" in lines[backend] or "GPU" in lines[backend], proc.stdout
