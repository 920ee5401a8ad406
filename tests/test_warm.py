"""tests/warm.py: a call forked from a warm process behaves as a fresh process would."""

import json
import os

import warm
from conftest import run_python

SHOW = """
import json, os, sys, tempfile
print(json.dumps({"warm": "keras" in sys.modules, "pid": os.getpid(), "cwd": os.getcwd(),
                  "tmp": tempfile.gettempdir(), "argv": sys.argv, "mark": os.environ.get("WARM_MARK"),
                  "main": __name__}))
print("to stderr", file=sys.stderr)
"""


def _show(proc):
    return json.loads(proc.stdout)


def test_a_forked_call_gets_its_own_pid_folder_environment_and_streams(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    env = {"KERAS_BACKEND": "jax", "WARM_MARK": "1", "TMPDIR": str(scratch)}
    first, second = (_show(run_python(SHOW, "a", 2, env=env)) for _ in range(2))
    assert first["warm"] and second["warm"], "not forked from the warm process"
    assert first["pid"] != second["pid"] != os.getpid()
    assert first["cwd"] == str(tmp_path) and first["tmp"] == str(scratch)
    assert first["argv"] == ["-c", "a", "2"] and first["mark"] == "1" and first["main"] == "__main__"
    assert run_python(SHOW, env=env).stderr == "to stderr\n"
    # Without a backend, or asked for, a fresh interpreter: keras not imported.
    assert not _show(run_python(SHOW, env={"WARM_MARK": "1"}))["warm"]
    assert not _show(run_python(SHOW, env=env, fresh=True))["warm"]


def test_exit_codes_and_what_libraries_read_at_import():
    found = warm.zygote("jax", dict(os.environ))
    assert found is not None
    for code, expected in (("raise SystemExit(3)", 3), ("raise ValueError('x')", 1), ("pass", 0)):
        request = {"kind": "code", "code": code, "argv": ["-c"], "env": dict(os.environ), "cwd": None}
        proc = found.run(request, ["python", "-c", code], timeout=60)
        assert proc.returncode == expected, (code, proc.stderr)
    assert "ValueError: x" in found.run({**request, "code": "raise ValueError('x')"}, [], timeout=60).stderr
    # JAX reads its JAX_* variables at import: another value needs another process.
    assert not found.serves({**os.environ, "JAX_ENABLE_X64": "1"})
    assert found.serves({**os.environ, "KERASTACK_ANYTHING": "1"})
    assert warm.backend_of(["--plugin", "p.py", "train", "--arch", "mlp"], {}) == "tensorflow"
    assert warm.backend_of(["train", "--backend", "torch"], {"KERAS_BACKEND": "jax"}) == "torch"
    assert warm.backend_of(["train", "--resume", "run"], {}) is None
    assert warm.backend_of(["verify", "m.tflite"], {}) is None
    # Reading a command line sets nothing in this process (it once turned plugin tracing on here).
    assert warm.backend_of(["--trace-plugins", "--unsafe", "train"], {}) == "tensorflow"
    assert "KERASTACK_TRACE_PLUGINS" not in os.environ and "KERASTACK_UNSAFE" not in os.environ
