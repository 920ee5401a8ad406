"""Nothing lost, under load: SIGKILL at random moments, writes that fail (disk full, permission
denied), and memory that stays bounded when the data does not fit in it.

Each test prints what it measured (``pytest -s`` shows it); the numbers go into the issue's note.
"""

import errno
import json
import os
import random
import shutil
import signal
import subprocess
import textwrap
import threading
import time

import pytest
from conftest import KERASTACK, one_line_error, run_cli, run_python
from fake_runs import make_run

pytestmark = pytest.mark.slow

TINY = ["--arch", "mlp", "--data", "digits", "--hp", "units=8", "--seed", "0", "--quiet"]

# Loads every file a run directory holds with the library that reads it; prints a JSON report.
CHECK_FILES = """
import json, sys, zipfile
from pathlib import Path
import numpy as np
import keras
from PIL import Image
from tflite.runner import TFLiteModel

report = {}
for run in map(Path, sys.argv[1:]):
    for path in sorted(p for p in run.rglob("*") if p.is_file()):
        name = f"{run.name}/{path.relative_to(run)}"
        if path.name.startswith("."):
            report[name] = "lock" if path.name == ".lock" else "partial" if ".partial-" in path.name else "HIDDEN?"
            continue
        try:
            if path.suffix == ".json":
                json.loads(path.read_text())
            elif path.suffix == ".keras":
                keras.saving.load_model(path)
            elif path.suffix == ".npz":
                with np.load(path) as z:
                    [z[k] for k in z.files]
            elif path.suffix == ".tflite":
                TFLiteModel(path).predict(np.zeros((1, 8, 8, 1), "float32"))
            elif path.suffix == ".png":
                with Image.open(path) as image:
                    image.load()
            elif path.suffix in (".csv", ".txt", ".md", ".html"):
                text = path.read_text()
                assert path.suffix != ".csv" or text.endswith("\\n"), "torn last line"
            else:
                raise AssertionError("unexpected file")
            report[name] = "ok"
        except Exception as exc:
            report[name] = f"BROKEN: {type(exc).__name__}: {exc}"[:200]
print("REPORT" + json.dumps(report))
"""


def _check_files(*runs):
    proc = run_python(CHECK_FILES, *runs, env={"KERAS_BACKEND": "tensorflow"})
    return json.loads(proc.stdout.split("REPORT", 1)[1])


def _kill_after(args, delay, ready):
    """Start ``kerastack ARGS``; once path ``ready`` exists, wait ``delay`` seconds and SIGKILL it.
    Returns whether it had finished by then."""
    proc = subprocess.Popen([KERASTACK, *map(str, args)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not ready.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(delay)
    finished = proc.poll() is not None
    if not finished:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return finished


def _seconds_after(args, ready):
    """Seconds ``kerastack ARGS`` runs on after path ``ready`` appears (it must succeed)."""
    proc = subprocess.Popen([KERASTACK, *map(str, args)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not ready.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    started = time.time()
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    return time.time() - started


@pytest.mark.sweep  # make test: test_snapshots.py's SIGKILL while a write is pending
def test_sigkill_at_random_moments_leaves_only_whole_files(tmp_path):
    """Kill ``train`` (a checkpoint, best.keras and history.csv every epoch) and ``export`` at
    random moments (four seeds each, four processes at a time); every file left must load, and
    temporary files must be hidden partials (which the next writer removes, see below)."""
    base = tmp_path / "base"
    proc = run_cli("train", *TINY, "--epochs", "2", "--out", base)
    assert proc.returncode == 0, proc.stderr
    jobs, runs = [], [base]
    for seed in range(4):
        run = tmp_path / f"train-{seed}"
        delay = random.Random(seed).uniform(0.0, 2.0)  # after the first epoch's files; an epoch takes ~0.2 s
        jobs.append((["train", *TINY, "--epochs", "60", "--out", run], delay, run / "history.csv"))
        runs.append(run)
    # An export (conversion, model.json, the report) takes a few seconds, less as it gets faster:
    # the kills land within the first 80 % of one timed here, so that each lands mid-export.
    timing = tmp_path / "export-timing"
    shutil.copytree(base, timing)
    export_seconds = _seconds_after(["export", timing, "--to", "tflite"], timing / "export")
    for seed in range(4):
        copy = tmp_path / f"export-{seed}"
        shutil.copytree(base, copy)
        delay = random.Random(100 + seed).uniform(0.0, 0.8 * export_seconds)
        jobs.append(
            (
                ["export", copy, "--to", "tflite", "--opt", f"quantize={('none', 'dynamic')[seed % 2]}"],
                delay,
                copy / "export",
            )
        )
        runs.append(copy)
    log = []
    for batch in (jobs[:4], jobs[4:]):
        threads = [
            threading.Thread(target=lambda job=job: log.append((job[0][0], round(job[1], 2), _kill_after(*job))))
            for job in batch
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    report = _check_files(*runs)
    broken = {k: v for k, v in report.items() if v not in ("ok", "lock", "partial")}
    print("\nkills (command, delay s, had finished):", log)
    print(
        "files checked:",
        len(report),
        "partials left:",
        sum(v == "partial" for v in report.values()),
        "locks left:",
        sum(v == "lock" for v in report.values()),
    )
    assert not broken, broken
    assert sum(v == "ok" for v in report.values()) >= 8 * 3, report
    assert all(not finished for _, _, finished in log), log  # every kill landed mid-run


def test_the_next_writer_removes_partial_files(tmp_path):
    """A killed writer's hidden ``.NAME.partial-*`` files go when the run is next locked for writing."""
    from core.files import atomic_path, remove_partials
    from core.runs import RunLock

    run = make_run(tmp_path, "run")
    with atomic_path(run / "model.keras") as tmp:
        tmp.write_bytes(b"half")
        left = tmp.with_name(tmp.name + "-copy")  # what a SIGKILL at this moment leaves
        left.write_bytes(b"half")
    assert left.name.startswith(".model.keras.partial-")
    with RunLock(run):
        assert remove_partials(run) == 1
    assert not left.exists() and (run / "model.keras").read_bytes() == b"half"


def _snapshot(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def cli_here(monkeypatch, capsys):
    """``call(argv)`` → (exit code, stderr) of ``core.cli.main`` in this process (no ML framework:
    only commands that need none)."""
    import core.proc.quiet
    from core.cli import main

    monkeypatch.setattr(core.proc.quiet, "filter_native_stderr", lambda: None)

    def call(argv):
        capsys.readouterr()
        try:
            main([str(a) for a in argv])
            code = 0
        except SystemExit as exit:
            code = exit.code
        return code, capsys.readouterr().err

    return call


@pytest.mark.parametrize("fault", ["disk-full-at-fsync", "disk-full-at-rename", "permission-denied-at-create"])
def test_failed_writes_say_so_and_keep_the_previous_files(tmp_path, monkeypatch, cli_here, fault):
    """``kerastack report`` rewrites report.html and the plots of a run; each write failing (as on
    a full disk or a read-only folder) gives one line naming the file, and every file the run held
    before is byte for byte the same, with no temporary file left."""
    import tempfile

    import core.files

    run = make_run(tmp_path, "run")
    assert cli_here(["report", run])[0] == 0
    before = _snapshot(run)
    assert "report.html" in before and "curves.png" in before

    def fail(code, text):
        def raiser(*args, **kwargs):
            raise OSError(code, text)

        return raiser

    if fault == "disk-full-at-fsync":
        monkeypatch.setattr(core.files.os, "fsync", fail(errno.ENOSPC, "No space left on device"))
    elif fault == "disk-full-at-rename":
        monkeypatch.setattr(core.files.os, "replace", fail(errno.ENOSPC, "No space left on device"))
    else:
        monkeypatch.setattr(tempfile, "mkstemp", fail(errno.EACCES, "Permission denied"))
    code, err = cli_here(["report", run])
    monkeypatch.undo()
    lines = [line for line in err.splitlines() if line.strip()]
    print(f"\n{fault}: exit {code}: {lines}")
    assert code == 1 and "Traceback" not in err
    error = [line for line in lines if "error:" in line]
    assert len(error) == 1, err
    expected = "Permission denied" if fault.startswith("permission") else "No space left on device"
    assert f"{run}/" in error[0] and f"cannot write: {expected}; the previous file is unchanged" in error[0]
    assert _snapshot(run) == before


@pytest.mark.skipif(
    os.geteuid() == 0,
    reason="running as root: chmod does not stop root from writing (the in-process fault test covers the same path)",
)
def test_read_only_run_directory(tmp_path):
    run = make_run(tmp_path, "run")
    before = _snapshot(run)
    os.chmod(run, 0o555)
    try:
        line = one_line_error(run_cli("report", run), 1)
    finally:
        os.chmod(run, 0o755)
    assert "cannot write: Permission denied" in line and str(run) in line
    assert _snapshot(run) == before


# A dataset of .npy shards on disk, read one batch (one shard) at a time through a PyDataset.
SHARDS = """
    from core import Dataset, hookimpl

    @hookimpl
    def register_datasets(register):
        register("shards", load, summary="float32 shards on disk, one batch per file")

    def load(path="", test_shards=4):
        from pathlib import Path

        import keras
        import numpy as np

        class Shards(keras.utils.PyDataset):
            def __init__(self, files):
                super().__init__()
                self.files = files

            def __len__(self):
                return len(self.files)

            def __getitem__(self, i):
                x = np.load(self.files[i])
                return x, (x[:, 0, 0, 0] > 0.5).astype("int32")

        root = Path(path)
        train, test = sorted(root.glob("train-*.npy")), sorted(root.glob("test-*.npy"))[:test_shards]
        return Dataset(train=Shards(train), validation=Shards(test[:1]), test=Shards(test),
                       class_names=("dark", "light"))
"""

MEMORY_JOB = """
import json, shutil, sys
from pathlib import Path
import numpy as np

root, plugin = Path(sys.argv[1]), sys.argv[2]
SHARD, SHAPE, TRAIN, TEST = 128, (32, 32, 3), 200, 64

def rss(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024

def reset_peak():
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS

def peak_growth(work):
    reset_peak()
    start = rss("VmRSS")
    work()
    return rss("VmHWM") - start

rng = np.random.default_rng(0)
data = root / "data"
data.mkdir()
for kind, count in (("train", TRAIN), ("test", TEST)):
    for i in range(count):
        np.save(data / f"{kind}-{i:04d}.npy", rng.random((SHARD, *SHAPE), dtype="float32"))
shard_bytes = SHARD * int(np.prod(SHAPE)) * 4
from core import export, train, verify

# Warm up (imports, graph tracing), then the same training on 10x fewer and on all shards.
report = {"dataset_bytes": TRAIN * shard_bytes}
small = root / "small-data"
small.mkdir()
for i in range(TRAIN // 10):
    (small / f"train-{i:04d}.npy").symlink_to(data / f"train-{i:04d}.npy")
for i in range(2):
    (small / f"test-{i:04d}.npy").symlink_to(data / f"test-{i:04d}.npy")

def fit_on(folder, out):
    return lambda: train("mlp", "shards", hparams={"units": [8]}, epochs=1, plugins=[plugin], seed=0,
                         data_options={"path": str(folder), "test_shards": 2}, out=str(root / out), verbose=0)

fit_on(small, "warm")()
report["train_growth_small"] = peak_growth(fit_on(small, "small"))
report["train_growth_all"] = peak_growth(fit_on(data, "all"))
report["small_bytes"] = TRAIN // 10 * shard_bytes

# verify: the same model on 16 and on 64 test shards (2,048 and 8,192 samples).
export(root / "all", "tflite")
lite = root / "all/export/tflite/model_float32.tflite"
for shards in (16, 64):
    copy = root / f"verify-{shards}"
    shutil.copytree(root / "all", copy)
    record = json.loads((copy / "run.json").read_text())
    record["dataset"]["options"]["test_shards"] = shards
    (copy / "run.json").write_text(json.dumps(record))
# The copies are other runs (more test data): verify is told so (other_run), as a user would be.
verify(lite, root / "verify-16", latency_runs=5, record=False, other_run=True)  # warm up
for shards in (16, 64):
    out = {}
    report[f"verify_growth_{shards}"] = peak_growth(
        lambda: out.update(verify(lite, root / f"verify-{shards}", latency_runs=5, record=False, other_run=True)))
    report[f"verify_samples_{shards}"] = out["samples"]
report["verify_bytes_16"], report["verify_bytes_64"] = 16 * shard_bytes, 64 * shard_bytes
print("MEMORY" + json.dumps(report))
"""


def test_memory_stays_bounded_when_training_and_verifying_from_disk(tmp_path):
    """Training streams a 300 MiB on-disk dataset through a PyDataset; verify streams thousands of
    test samples. Peak RSS growth (VmHWM after resetting it, over VmRSS before) stays a small
    fraction of the data, and does not grow with it."""
    plugin = tmp_path / "shards.py"
    plugin.write_text(textwrap.dedent(SHARDS))
    proc = run_python(MEMORY_JOB, tmp_path, plugin, env={"KERAS_BACKEND": "tensorflow"})
    r = json.loads(proc.stdout.split("MEMORY", 1)[1])
    mib = {k: round(v / 2**20, 1) for k, v in r.items() if "samples" not in k}
    print("\nmemory (MiB):", mib, "verify samples:", r["verify_samples_16"], r["verify_samples_64"])
    data = r["dataset_bytes"]
    # The 300 MiB never come into memory at once: ~20 MiB alone, up to 39 MiB observed beside the
    # other test worker (batches queue up while the consumer waits for a core).
    assert r["train_growth_all"] < data / 5, mib
    assert r["train_growth_all"] - r["train_growth_small"] < (data - r["small_bytes"]) / 10, mib
    assert (r["verify_samples_16"], r["verify_samples_64"]) == (2048, 8192)
    extra = r["verify_bytes_64"] - r["verify_bytes_16"]  # 72 MiB more test data
    assert r["verify_growth_64"] - r["verify_growth_16"] < extra / 10, mib  # flat
