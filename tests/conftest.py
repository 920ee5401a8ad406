"""Shared helpers: run the real ``kerastack`` command in a subprocess, write throwaway plugins."""

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
import warm

REPO = Path(__file__).resolve().parents[1]

# XLA (JAX, and TensorFlow's jit_compile) compiles the tests' tiny models without LLVM's costly
# optimizations: compiling, not running, is most of a small model's training time on this CPU
# (measured: 2.5x less compile time). Children inherit it; benchmarks do not set it.
FAST_XLA = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {FAST_XLA}".strip()
# JAX keeps what it compiled on disk, keyed by the program, JAX version and flags: the many JAX
# processes of a test session that train the same small models compile each function once
# (measured: a second process trains in half the time).
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(Path(tempfile.gettempdir()) / "kerastack-tests-jax-cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "-1")
# `make test` runs two workers on two cores. torch's OpenMP threads (one per core by default) spin
# against the other worker's process: two small torch trainings side by side took 7.3 s each with the
# default threads and 0.75 s with one thread each (0.88 s alone with two). One thread per process.
os.environ.setdefault("OMP_NUM_THREADS", "1")
KERASTACK = str(Path(sys.executable).with_name("kerastack"))

# Proxies nobody listens on: a test child that tries to download fails at once instead of fetching.
DEAD_PROXY = "http://127.0.0.1:9"
NO_NETWORK = dict.fromkeys(("https_proxy", "http_proxy", "HTTPS_PROXY", "HTTP_PROXY"), DEAD_PROXY)
NO_NETWORK.update(no_proxy="", NO_PROXY="")


def run_cli(*args, env=None, cwd=None, timeout=600, fresh=False):
    """``kerastack ARGS`` in a new process; returns the CompletedProcess (text, captured). A command
    whose arguments tell its backend (``--backend``, train's default, ``export --to tflite``: see
    ``warm.backend_of``) runs in a child of that backend's warm process (tests/warm.py) unless
    ``fresh``."""
    full_env = dict(os.environ)
    full_env.pop("KERASTACK_PLUGINS", None)
    full_env.update(env or {})
    argv = [KERASTACK, *map(str, args)]
    found = None if fresh else warm.zygote(warm.backend_of(args, full_env), full_env)
    if found is not None:
        request = {"kind": "cli", "argv": argv, "env": full_env, "cwd": None if cwd is None else str(cwd)}
        return found.run(request, argv, timeout)
    return subprocess.run(argv, capture_output=True, text=True, env=full_env, cwd=cwd, timeout=timeout)


TEST_ALL = os.environ.get("KERASTACK_TEST_ALL") == "1"
"""``make test-all``: the ``sweep`` tests too (CI's ``make test`` leaves them out)."""


def pytest_sessionfinish(session):
    warm.close_all()


def pytest_collection_modifyitems(config, items):
    """Without ``KERASTACK_TEST_ALL=1`` the tests marked ``sweep`` are deselected: they repeat a
    check that ``make test`` makes once (another backend, a fault at random moments)."""
    if TEST_ALL:
        return
    sweeps = [item for item in items if item.get_closest_marker("sweep")]
    if sweeps:
        config.hook.pytest_deselected(items=sweeps)
        items[:] = [item for item in items if not item.get_closest_marker("sweep")]


def run_python(code, *args, env=None, timeout=600, fresh=False):
    """Run ``code`` with this interpreter in a new process; fails the test on a non-zero exit. With
    ``KERAS_BACKEND`` in ``env``, a child of that backend's warm process (tests/warm.py) runs it
    unless ``fresh``."""
    full_env = dict(os.environ, **(env or {}))
    code = textwrap.dedent(code)
    argv = [sys.executable, "-c", code, *map(str, args)]
    found = None if fresh else warm.zygote((env or {}).get("KERAS_BACKEND"), full_env)
    if found is not None:
        request = {"kind": "code", "code": code, "argv": ["-c", *argv[3:]], "env": full_env, "cwd": None}
        proc = found.run(request, argv, timeout)
    else:
        proc = subprocess.run(argv, capture_output=True, text=True, env=full_env, timeout=timeout)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc


def one_line_error(proc, code):
    """Assert ``proc`` failed with exit ``code`` and a single-line error, no traceback."""
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip() and "warning:" not in line]
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.fixture
def write_plugin(tmp_path):
    """Write a plugin module to ``tmp_path/NAME.py`` and return its path."""

    def write(name, source):
        path = tmp_path / f"{name}.py"
        path.write_text(textwrap.dedent(source))
        return path

    return write


def write_wav(path, x, rate, width=2, channels=1):
    """Waveform ``x`` (float in [-1, 1], one channel) as a PCM WAV file of ``width`` bytes a sample
    (1: unsigned 8-bit; 2, 3, 4: signed) at ``rate`` Hz, the channel repeated ``channels`` times."""
    import wave

    import numpy as np

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    ints = np.round(np.clip(x, -1, 1) * (2 ** (8 * width - 1) - 1)).astype(np.int64)
    ints = np.repeat(ints[:, None], channels, axis=1).ravel()
    if width == 1:
        data = (ints + 128).astype(np.uint8).tobytes()
    elif width == 3:
        data = b"".join(int(v).to_bytes(3, "little", signed=True) for v in ints)
    else:
        data = ints.astype(f"<i{width}").tobytes()
    with wave.open(str(path), "wb") as f:
        f.setnchannels(channels)
        f.setsampwidth(width)
        f.setframerate(rate)
        f.writeframes(data)
    return Path(path)


def read_json(path):
    return json.loads(Path(path).read_text())


# One process per backend trains the reference run through the CLI's own code, then records what
# only that backend can tell: its predictions, and an exact reload in the same backend.
TRAIN_JOB = """
import json, sys
import numpy as np
from core.cli import main
backend, out = sys.argv[1], sys.argv[2]
try:
    main(["train", "--arch", "cnn", "--data", "digits", "--backend", backend, "--epochs", "4",
          "--seed", "0", "--out", out, "--quiet"])
except SystemExit as exit:
    assert exit.code == 0, exit.code
import keras
from core import load_run
from plugins.datasets.digits import load
x, y = load().test
run = load_run(out)
pred = np.asarray(run.model.predict(x, verbose=0))
np.save(f"{out}/keras_pred.npy", pred)
again = keras.saving.load_model(f"{out}/model.keras")
report = {"backend": keras.backend.backend(),
          "reload_diff": float(np.abs(np.asarray(again.predict(x, verbose=0)) - pred).max())}
# The same seed twice on this backend: identical weights.
from core import train
a, b = (train("mlp", "digits", backend=backend, epochs=1, seed=5, out=f"{out}-seed{i}", verbose=0)
        for i in (1, 2))
report["seeded_identical"] = all(np.array_equal(x, y) for x, y in zip(a.model.get_weights(),
                                                                       b.model.get_weights()))
# Four batches per compiled call: the same steps in the same order, so the same weights.
from core.errors import UsageError
try:
    c = train("mlp", "digits", backend=backend, epochs=1, seed=5, steps_per_execution=4, out=f"{out}-spe",
              verbose=0)
    report["spe_diff"] = max(float(np.abs(x - y).max()) for x, y in zip(a.model.get_weights(),
                                                                          c.model.get_weights()))
    report["spe_recorded"] = json.load(open(f"{out}-spe/run.json"))["training"]["steps_per_execution"]
except UsageError as exc:
    report["spe_error"] = str(exc)
if backend == "jax":
    # The Python API in a JAX process: the exporter needs TensorFlow, so the core runs it in a
    # child process; verify then runs here, against the JAX model.
    from core import export, verify
    paths = export(out, "tflite", {"quantize": "dynamic"})
    report["child_export"] = [str(p) for p in paths]
    report["child_verify"] = verify(paths[0], out)
    report["backend_after"] = keras.backend.backend()
json.dump(report, open(f"{out}/job.json", "w"))
"""


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """``trained(backend)`` → run directory of cnn on digits trained under ``backend`` (cached)."""
    cache = {}

    def get(backend):
        if backend not in cache:
            out = tmp_path_factory.mktemp(f"run-{backend}") / "run"
            run_python(TRAIN_JOB, backend, out, env={"KERAS_BACKEND": backend})
            cache[backend] = out
        return cache[backend]

    return get


QUANT_TRAIN = """
import sys
from core import train
train("cnn", "digits", backend="tensorflow", epochs=4, batch_size=64, seed=0, out=sys.argv[1], verbose=0)
"""


SOUNDS_TRAIN = """
import sys
from core import train
train("audio_cnn", "sounds", backend=sys.argv[2], epochs=8, seed=0, out=sys.argv[1], verbose=0)
"""
# A model trained under torch, converted in a TensorFlow process; verified there on the test split.
SOUNDS_EXPORT = """
import json, sys
from core import export, verify
run = sys.argv[1]
# keep_float unset: the exporter keeps the spectrogram float by itself (selective.front_ends).
export(run, "tflite", {"quantize": "none,int8", "io": "float", "layer_errors": False})
found = {name: verify(f"{run}/export/tflite/{name}", run, latency_runs=1, record=False)
         for name in ("model_float32.tflite", "model_int8-mixed-floatio.tflite")}
json.dump(found, open(f"{run}/verified.json", "w"))
"""


def sounds_cnn(tmp_path_factory, backend="torch", exported=False):
    """``audio_cnn`` trained on ``sounds`` under ``backend`` (8 epochs), shared by the audio test
    modules of a session; ``exported``: the torch-trained run, exported as float32 and int8 with the
    log-mel front end kept float and a float waveform in (what MediaPipe's AudioClassifier feeds;
    ``export/tflite``: model_float32 and model_int8-mixed-floatio) and verified
    (``verified.json``: ``core.verify``'s result per file)."""
    run = tmp_path_factory.getbasetemp() / f"sounds-audio-cnn-{backend}"
    if not (run / "model.keras").exists():
        run_python(SOUNDS_TRAIN, run, backend, env={"KERAS_BACKEND": backend})
    if exported and not (run / "verified.json").exists():
        assert backend == "torch", backend
        run_python(SOUNDS_EXPORT, run, env={"KERAS_BACKEND": "tensorflow"})
    return run


def digits_cnn(tmp_path_factory):
    """The digits cnn trained under TensorFlow, shared by the quantization test modules of a session."""
    run = tmp_path_factory.getbasetemp() / "quant-digits-cnn"
    if not (run / "model.keras").exists():
        run_python(QUANT_TRAIN, run, env={"KERAS_BACKEND": "tensorflow"})
    return run
