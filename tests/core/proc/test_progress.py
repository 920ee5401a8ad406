"""Progress bars: drawn on a terminal (also from the TensorFlow export child), nothing when piped."""

import os
import pty
import subprocess
import sys

import pytest
from conftest import KERASTACK, run_cli

BAR = "━"  # rich's bar


def run_in_terminal(*command, env=None):
    """``command`` with stdin, stdout and stderr on a pseudo-terminal; (exit code, output)."""
    env = dict(os.environ, TERM="xterm", COLUMNS="100", **(env or {}))
    env.pop("KERASTACK_PLUGINS", None)
    env.pop("KERASTACK_PROGRESS_FD", None)
    main, child = pty.openpty()
    proc = subprocess.Popen([str(c) for c in command], stdin=child, stdout=child, stderr=child, env=env)
    os.close(child)
    out = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # EIO: the child side is closed
            break
        if not chunk:
            break
        out += chunk
    os.close(main)
    return proc.wait(timeout=300), out.decode("utf-8", "replace")


def test_no_bar_without_a_terminal(capfd):
    from core.proc.progress import progress_bar, terminal_fd

    assert terminal_fd() is None  # pytest captures fd 2
    with progress_bar(3, "work") as bar:
        bar.set_total(4)
        for _ in range(4):
            bar.advance()
    out, err = capfd.readouterr()
    assert out == err == ""


DRAW = """
def draw(total):
    from core import progress_bar

    with progress_bar(total, "child step") as bar:
        for _ in range(total):
            bar.advance()
    return total
"""
PARENT = """
import sys

from core import call_in_backend
from core.proc.quiet import filter_native_stderr

import drawing

filter_native_stderr()  # as the CLI does: fd 2 becomes a pipe that passes whole lines only
print("done", call_in_backend("jax", drawing.draw, {"total": 7}), flush=True)
"""


def test_a_child_process_draws_on_the_terminal_and_not_on_a_pipe(tmp_path):
    (tmp_path / "drawing.py").write_text(DRAW)
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    code, out = run_in_terminal(sys.executable, script, env=env)
    assert code == 0 and "done 7" in out, out
    assert "child step" in out and BAR in out and "7/7" in out, out

    piped = subprocess.run([sys.executable, script], capture_output=True, text=True, env={**os.environ, **env})
    assert piped.returncode == 0 and piped.stdout == "done 7\n", piped
    assert piped.stderr == "", piped.stderr


@pytest.mark.slow
def test_export_and_verify_bars_on_a_terminal_none_when_piped(tmp_path):
    # A test split over verify's LARGE_SPLIT (1,079 samples): verify shows a bar. Trained, exported
    # to int8 (calibration) and reported on (verify at 1 and 2 threads) in one process.
    config = tmp_path / "run.toml"
    config.write_text(
        'arch = "mlp"\ndata = "digits"\nbackend = "tensorflow"\nseed = 0\n[data_options]\ntest = 0.6\n'
        '[training]\nepochs = 1\n[[export]]\nto = "tflite"\noptions = { quantize = "int8" }\n'
    )
    run = tmp_path / "run"
    code, out = run_in_terminal(KERASTACK, "train", "--config", config, "--quiet", "--out", run)
    assert code == 0, out
    for text in ("int8 calibration", "300/300", "verify (test split)", "1079/1079", BAR):
        assert text in out, (text, out[-3000:])
    assert "\x1b[2K" in out  # erased when done (transient)

    lite = run / "export" / "tflite" / "model_int8.tflite"
    piped = run_cli("verify", lite, "--run", run)
    assert piped.returncode == 0, piped.stderr
    both = piped.stdout + piped.stderr
    assert "n=1079" in both and BAR not in both and "\x1b" not in both and "\r" not in both, both
