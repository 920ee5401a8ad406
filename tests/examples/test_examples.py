"""The examples run, with fast settings, so that they cannot rot."""

import re
import subprocess
import sys

import pytest
from conftest import REPO

pytestmark = pytest.mark.slow


def run_example(name, *args):
    proc = subprocess.run(
        [sys.executable, str(REPO / "examples" / name), *args], capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.sweep  # the example plugin trains, exports and verifies in test_example_plugin.py
def test_three_backends():
    out = run_example("three_backends.py", "--epochs", "2")
    rows = re.findall(r"^(tensorflow|jax|torch)\s+([0-9.]+)\s+[0-9.]+\s+([0-9.]+)\s+([0-9.]+)$", out, re.M)
    assert [r[0] for r in rows] == ["tensorflow", "jax", "torch"], out
    for _, acc, _int8_acc, agreement in rows:
        assert float(acc) >= 0.7 and float(agreement) >= 0.95, out


def test_custom_dataset():
    out = run_example("custom_dataset.py", "--epochs", "15")
    csv_acc = float(re.search(r"csv:.*test accuracy ([0-9.]+)", out).group(1))
    rings_acc = float(re.search(r"rings:.*test accuracy ([0-9.]+)", out).group(1))
    assert "['no', 'yes']" in out and csv_acc >= 0.7 and rings_acc >= 0.8, out


def test_edge():
    out = run_example("edge.py", "--epochs", "4")
    assert re.search(r"int8 accuracy 0\.9", out), out
    assert "latency p50" in out and len(re.findall(r"^\d: ", out, re.M)) == 5, out
