"""``--distribute data --processes 2`` on each backend's own engine, on 127.0.0.1 (issue 15).

One scenario per backend, three runs: (1) one process trains a small cnn (BatchNormalization) on
digits for 2 epochs; (2) two processes (one thread each) train the same for 4, and after epoch 2
rank 0 lists the sockets its process listens on and rank 1 kills itself with SIGKILL (a plugin
callback); (3) ``--resume`` restarts the two processes from rank 0's checkpoint. The checkpoint of
epoch 2 equals the one-process run's weights (BatchNormalization's moments synchronized:
``--sync-batchnorm``) and its history the one-process run's (each process evaluated its part of
the validation split, the metrics reduced exactly), every worker ended with one line naming its
rank, nothing listened outside loopback, and the resumed run completes.
"""

import io
import json
import os
import socket
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import KERASTACK as KERASTACK_BIN
from conftest import read_json, run_cli

FAULTS = """
import json, os, signal

from core import hookimpl


@hookimpl
def register_callbacks(register):
    register("fault", fault, summary="SIGKILL or raise on one rank after an epoch (tests)")


def fault():
    import keras
    import psutil

    class Fault(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            rank, at = os.environ.get("RANK"), os.environ.get("FAULT_AT")
            if at is None or epoch + 1 != int(at) or os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") != "0":
                return  # (a group torchrun restarted runs on)
            if os.environ.get("FAULT_SOCKETS"):  # what this rank's process listens on, now
                listening = [
                    [c.laddr.ip, c.laddr.port]
                    for c in psutil.Process().net_connections("inet")
                    if c.status == psutil.CONN_LISTEN
                ]
                tf_config = json.loads(os.environ.get("TF_CONFIG") or "null")
                grpc = int(tf_config["cluster"]["worker"][int(rank)].rsplit(":", 1)[1]) if tf_config else None
                with open(f"{os.environ['FAULT_SOCKETS']}.{rank}", "w") as f:
                    json.dump({"listening": listening, "tf_grpc_port": grpc}, f)
            if rank == os.environ.get("FAULT_RANK", "1"):
                if os.environ.get("FAULT_KIND") == "raise":
                    raise RuntimeError("a fault on purpose")
                os.kill(os.getpid(), signal.SIGKILL)

    return Fault()
"""

# One thread per process: the 2 cores of this machine, one per worker.
THREADS = {"OMP_NUM_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}
ARGS = ["--arch", "mlp", "--data", "iris", "--hp", "dropout=0", "--optimizer", "sgd", "--batch-size", "16"]
ARGS += ["--seed", "3", "--distribute", "data", "--quiet"]
# BatchNormalization in every conv block; digits' validation and test splits (270 and 180 samples)
# are shared among the processes.
CNN = ["--arch", "cnn", "--data", "digits", "--hp", "filters=8", "--hp", "blocks=1", "--hp", "dense=16"]
CNN += ["--hp", "dropout=0", "--optimizer", "sgd", "--learning-rate", "0.1", "--batch-size", "64"]
CNN += ["--seed", "3", "--distribute", "data", "--quiet"]
# --sync-batchnorm: the global batch's moments, so that 2 processes train what 1 does.
SYNCED = ["--sync-batchnorm"]


def weights(path):
    """The layer weights saved in a .keras file, by path (h5py reads the archive's weights)."""
    import h5py

    with zipfile.ZipFile(path) as archive:
        h5 = h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r")
        found = {}
        h5["layers"].visititems(lambda k, v: found.setdefault(k, np.array(v)) if hasattr(v, "shape") else None)
        return found


def weight_diff(a, b):
    """The largest difference between the layer weights of two .keras files (of the same layers)."""
    a, b = weights(a), weights(b)
    assert sorted(a) == sorted(b)
    return max(float(np.abs(a[k] - b[k]).max()) for k in a)


def history(run):
    """A run's history.csv: its header, and its rows as a float array."""
    rows = [line.split(",") for line in (run / "history.csv").read_text().splitlines()]
    return rows[0], np.array(rows[1:], float)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["torch", "jax", "tensorflow"])
def test_two_processes_match_one_survive_a_kill_and_resume(backend, tmp_path):
    plugin = tmp_path / "faults.py"
    plugin.write_text(FAULTS)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**THREADS, "TMPDIR": str(scratch)}
    one = run_cli("train", *CNN, "--epochs", "2", "--backend", backend, "--out", tmp_path / "one", env=env)
    assert one.returncode == 0, one.stderr

    out = tmp_path / "two"
    sockets = tmp_path / "sockets.json"
    fault = {"FAULT_AT": "2", "FAULT_SOCKETS": str(sockets)}
    two = run_cli(
        "--plugin", plugin, "train", *CNN, *SYNCED, "--epochs", "4", "--backend", backend, "--processes", "2",
        "--out", out,
        "--callback", "fault", env={**env, **fault}, timeout=240,
    )  # fmt: skip
    # Rank 1 was killed; rank 0 noticed (its collective failed) and said so in one line; exit 1.
    assert two.returncode == 1, two.stderr
    lines = [line for line in two.stderr.splitlines() if line.startswith("kerastack: rank")]
    assert "kerastack: rank 1 of 2: killed by SIGKILL" in lines, two.stderr
    assert len([line for line in lines if line.startswith("kerastack: rank 0 of 2: ")]) == 1, two.stderr
    assert "Traceback" not in two.stderr, two.stderr[-3000:]
    record = read_json(out / "run.json")
    assert record["status"] == "failed" and record["training"]["processes"] == 2, record
    assert record["training"]["sync_batchnorm"] is True, record
    engine = {"torch": "torch.distributed", "jax": "keras.distribution.initialize", "tensorflow": "MultiWorker"}
    assert record["distributed"]["processes"] == 2 and engine[backend] in record["distributed"]["engine"], record
    assert read_json(out / "checkpoint.json")["epoch"] == 2
    # Two processes, global batch 64 (32 + 32), trained as one process at batch 64 did: BatchNorm's
    # moments are the global batch's.
    diff = weight_diff(tmp_path / "one" / "model.keras", out / "checkpoint.keras")
    assert diff <= 1e-5, f"{backend}: 2 processes differ from 1 by {diff}"
    # The logs: each process evaluated its part of the validation split, and the metrics (sums and
    # counts), the training ones too, were reduced over both: the whole split's values.
    (head1, rows1), (head2, rows2) = history(tmp_path / "one"), history(out)
    assert head1 == head2 and len(rows2) == 2, (head1, rows1, head2, rows2)
    assert np.allclose(rows1, rows2, rtol=1e-5, atol=1e-6), (head1, rows1, rows2)
    # Nobody else gets in: everything each worker's process listened on was on loopback.
    # TensorFlow's gRPC server cannot be told an address: it listens on every interface at its
    # TF_CONFIG port (measured, TF 2.21; README "Scaling out" says to firewall it). Nothing else may.
    for rank in (0, 1):
        found = json.loads(Path(f"{sockets}.{rank}").read_text())
        assert found["listening"], f"rank {rank} listened on no port"
        loopback = ("127.0.0.1", "::1", "::ffff:127.0.0.1")
        outside = [[ip, port] for ip, port in found["listening"] if ip not in loopback]
        assert outside == ([["::", found["tf_grpc_port"]]] if backend == "tensorflow" else []), (rank, found)

    resumed = run_cli("train", "--resume", out, env=env, timeout=240)
    assert resumed.returncode == 0, resumed.stderr
    final = read_json(out / "run.json")
    assert final["status"] == "complete" and final["resumed"] == [2] and final["training"]["processes"] == 2
    assert len((out / "history.csv").read_text().splitlines()) == 5
    # Written by rank 0 alone: the run's own files, and nothing left by rank 1's private folder.
    names = {p.name for p in out.iterdir()}
    assert {"run.json", "model.keras", "history.csv", "metrics.json"} <= names, names
    assert not names - {"run.json", "model.keras", "history.csv", "metrics.json", "best.keras", "predictions.npz",
                        "curves.png", "confusion.png"}, names  # fmt: skip
    left = [p.name for p in scratch.iterdir() if p.name.startswith("kerastack")]  # torch keeps its caches there
    assert left == [], left
    assert set(read_json(out / "metrics.json")) >= {"val_loss", "test_loss", "test_accuracy"}


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_batchnorm_normalizes_each_process_part_by_default(backend, tmp_path):
    # --sync-batchnorm is the test above. By default each process normalizes its own half of the
    # batch (on JAX, whose batch is one global array: each device's part), so after one epoch the
    # weights have left the one-process run's (the issue measured 1e-2), and the run's record says
    # how it trained. TensorFlow's switch is the same `if` as torch's.
    one = run_cli("train", *CNN, "--epochs", "1", "--backend", backend, "--out", tmp_path / "one", env=THREADS)
    assert one.returncode == 0, one.stderr
    two = run_cli(
        "train", *CNN, "--epochs", "1", "--backend", backend, "--processes", "2", "--out", tmp_path / "two",
        env=THREADS, timeout=240,
    )  # fmt: skip
    assert two.returncode == 0, two.stderr
    assert read_json(tmp_path / "two" / "run.json")["training"]["sync_batchnorm"] is False
    diff = weight_diff(tmp_path / "one" / "model.keras", tmp_path / "two" / "model.keras")
    assert diff > 1e-4, f"2 processes with per-process BatchNorm equal 1 process ({diff}): BatchNorm was synchronized"


@pytest.mark.slow
def test_jax_workers_step_reduces_gradients_loss_and_metrics_as_one_process(tmp_path):
    # Without --sync-batchnorm, JAX's workers run their own step (each device's gradients, one
    # all-reduce of a flat vector: core/engine/backends/jax.py). On an mlp (no BatchNorm) two
    # processes must still train and log what one process does: the gradients' mean, the loss
    # tracker's summed updates, the compiled metrics on the put-together predictions.
    args = [*ARGS, "--epochs", "2", "--backend", "jax"]
    one = run_cli("train", *args, "--out", tmp_path / "one", env=THREADS)
    assert one.returncode == 0, one.stderr
    two = run_cli("train", *args, "--processes", "2", "--out", tmp_path / "two", env=THREADS, timeout=240)
    assert two.returncode == 0, two.stderr
    diff = weight_diff(tmp_path / "one" / "model.keras", tmp_path / "two" / "model.keras")
    assert diff <= 1e-5, f"2 JAX processes differ from 1 by {diff}"
    (head1, rows1), (head2, rows2) = history(tmp_path / "one"), history(tmp_path / "two")
    assert head1 == head2 and "loss" in head1 and "accuracy" in head1, (head1, head2)
    assert np.allclose(rows1, rows2, rtol=1e-5, atol=1e-6), (head1, rows1, rows2)


@pytest.mark.slow
def test_a_worker_that_raises_ends_the_run(tmp_path):
    plugin = tmp_path / "faults.py"
    plugin.write_text(FAULTS)
    env = {**THREADS, "FAULT_AT": "1", "FAULT_KIND": "raise", "FAULT_RANK": "0", "FAULT_SOCKETS": str(tmp_path / "s")}
    proc = run_cli(
        "--plugin", plugin, "train", *ARGS, "--epochs", "2", "--backend", "torch", "--processes", "2",
        "--out", tmp_path / "run",
        "--callback", "fault", env=env, timeout=240,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("kerastack: rank")]
    assert any(line.startswith("kerastack: rank 0 of 2: ") and "a fault on purpose" in line for line in lines), lines
    assert any(line.startswith("kerastack: rank 1 of 2: ") for line in lines), lines
    assert len(lines) == 2, proc.stderr
    assert read_json(tmp_path / "run" / "run.json")["status"] == "failed"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--backend", "torch", "--processes", "2", "--distribute", "data", "--batch-size", "15"], "multiple of 2"),
        (["--backend", "torch", "--processes", "0", "--distribute", "data"], "--processes must be at least 1"),
        (["--backend", "jax", "--processes", "2"], "add --distribute data"),
        (["--backend", "torch", "--distribute", "model"], "on torch use --distribute data"),
        (["--backend", "tensorflow", "--distribute", "model"], "needs the jax backend"),
    ],
)
def test_combinations_an_engine_cannot_do_are_usage_errors(args, message, tmp_path):
    proc = run_cli("train", "--arch", "mlp", "--data", "iris", *args, "--out", tmp_path / "run")
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr, proc.stderr
    assert not (tmp_path / "run").exists()


def test_a_port_in_use_is_refused_before_any_worker_starts(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = run_cli(
            "train", "--arch", "mlp", "--data", "iris", "--backend", "torch", "--processes", "2",
            "--distribute", "data", "--out", tmp_path / "run", env={"KERASTACK_DIST_PORT": str(port)},
        )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert f"port {port} on 127.0.0.1 is in use" in proc.stderr, proc.stderr
    assert not (tmp_path / "run").exists()


def test_under_a_launcher_processes_must_agree_and_seed_and_out_are_required(tmp_path):
    env = {"RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1"}
    base = ["train", "--arch", "mlp", "--data", "iris", "--backend", "torch", "--distribute", "data"]
    proc = run_cli(*base, "--processes", "3", "--seed", "0", "--out", tmp_path / "a", env=env)
    assert proc.returncode == 2 and "the launcher started 2 processes (RANK/WORLD_SIZE)" in proc.stderr, proc.stderr
    proc = run_cli(*base, "--out", tmp_path / "b", env=env)
    assert proc.returncode == 2 and "same --seed and --out" in proc.stderr, proc.stderr


def test_info_shows_rank_and_process_count_under_a_launcher():
    for env, shown in [
        (
            {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"},
            "process rank 1 of 2 (local rank 1, from RANK/WORLD_SIZE)",
        ),
        (
            {
                "TF_CONFIG": json.dumps(
                    {"cluster": {"worker": ["h0:1", "h1:1", "h2:1"]}, "task": {"type": "worker", "index": 2}}
                )
            },
            "process rank 2 of 3",
        ),
        ({"KERAS_DISTRIBUTION_NUM_PROCESSES": "4", "KERAS_DISTRIBUTION_PROCESS_ID": "3"}, "process rank 3 of 4"),
        ({"SLURM_NTASKS": "8", "SLURM_PROCID": "5", "SLURM_LOCALID": "1"}, "process rank 5 of 8 (local rank 1"),
    ]:
        proc = run_cli("info", "--no-devices", env=env)
        assert proc.returncode == 0, proc.stderr
        assert shown in proc.stdout, (env, proc.stdout)
    assert "process rank" not in run_cli("info", "--no-devices").stdout


@pytest.fixture(autouse=True)
def _no_launcher_variables(monkeypatch):
    """The tests set the launcher's variables themselves; none leak in from a cluster job."""
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "TF_CONFIG", "KERAS_DISTRIBUTION_NUM_PROCESSES", "SLURM_NTASKS"):
        monkeypatch.delenv(name, raising=False)
    assert "RANK" not in os.environ


@pytest.mark.slow
def test_two_commands_started_as_torchrun_starts_them_make_one_run_on_streamed_data(tmp_path):
    """What a cluster launcher does (torchrun, srun): the same command twice, each told its rank by
    torchrun's variables; they meet at MASTER_ADDR:MASTER_PORT (torch's TCPStore, env://). The data
    streams from image files (a PyDataset): each process reads every other batch of half the size."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for name, low in (("dark", 0), ("bright", 160)):
        (tmp_path / "images" / name).mkdir(parents=True)
        for i in range(12):
            pixels = rng.integers(low, low + 96, (8, 8, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "images" / name / f"{i}.png")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "run"
    args = [KERASTACK_BIN, "train", "--arch", "mlp", "--data", "image_folder", "--data-opt"]
    args += [f"path={tmp_path / 'images'}", "--data-opt", "size=8", "--batch-size", "4", "--epochs", "2"]
    args += ["--seed", "0", "--distribute", "data", "--quiet", "--backend", "torch", "--out", str(out)]
    procs = []
    for rank in (0, 1):
        env = dict(os.environ, **THREADS, RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank))
        env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), GLOO_SOCKET_IFNAME="lo")
        env.pop("KERASTACK_PLUGINS", None)
        procs.append(subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    record = read_json(out / "run.json")
    assert record["status"] == "complete" and record["training"]["processes"] == 2, record
    assert record["distributed"]["launcher"] == "RANK/WORLD_SIZE", record
    assert "batch_size" not in record["dataset"]["options"]  # the loader's is the process's share
    assert len((out / "history.csv").read_text().splitlines()) == 3
    assert "run: " + str(out) in results[1][0]  # rank 1 names rank 0's folder, its own is gone


@pytest.mark.slow
def test_layers_unfrozen_by_fine_tune_after_train_in_step_on_torch(tmp_path):
    # --freeze backbone trains the head alone; after epoch 1 every layer is unfrozen. The parameters
    # frozen at the start must get their gradients averaged over the ranks too, else each rank
    # trains them on its own shard and the ranks drift apart (rank 0's weights would not equal one
    # process's).
    more = ["--freeze", "backbone", "--fine-tune-after", "1", "--epochs", "2", "--backend", "torch"]
    one = run_cli("train", *ARGS, *more, "--out", tmp_path / "one", env=THREADS)
    assert one.returncode == 0, one.stderr
    two = run_cli("train", *ARGS, *more, "--processes", "2", "--out", tmp_path / "two", env=THREADS, timeout=240)
    assert two.returncode == 0, two.stderr
    diff = weight_diff(tmp_path / "one" / "model.keras", tmp_path / "two" / "model.keras")
    assert diff <= 1e-5, f"2 processes differ from 1 by {diff} after fine-tuning"
    # Each process evaluated its part of the test split (15 of iris's 30), the metrics reduced exactly.
    m1, m2 = read_json(tmp_path / "one" / "metrics.json"), read_json(tmp_path / "two" / "metrics.json")
    keys = [k for k in m1 if k.startswith(("test_", "val_")) and isinstance(m1[k], float)]
    assert {"test_loss", "test_accuracy", "val_loss"} <= set(keys), m1
    assert np.allclose([m1[k] for k in keys], [m2[k] for k in keys], rtol=1e-5, atol=1e-6), (m1, m2)


@pytest.mark.slow
@pytest.mark.sweep  # make test: the restart's store (backends/test_torch.py) and the resume (above)
def test_torchrun_restarts_the_group_and_the_run_resumes_from_its_checkpoint(tmp_path):
    """``torchrun --max-restarts 1``: rank 1 SIGKILLed after epoch 2 of 3; the agent restarts both
    workers with the same command, and kerastack continues the run from rank 0's checkpoint."""
    plugin = tmp_path / "faults.py"
    plugin.write_text(FAULTS)
    out = tmp_path / "run"
    torchrun = [str(Path(KERASTACK_BIN).with_name("torchrun")), "--standalone", "--nproc-per-node", "2"]
    torchrun += ["--max-restarts", "1", "--monitor-interval", "0.5", "--no-python", KERASTACK_BIN]
    args = ["--plugin", str(plugin), "train", *ARGS, "--epochs", "3", "--backend", "torch", "--callback", "fault"]
    env = dict(os.environ, **THREADS, FAULT_AT="2", GLOO_SOCKET_IFNAME="lo")
    env.pop("KERASTACK_PLUGINS", None)
    proc = subprocess.run([*torchrun, *args, "--out", str(out)], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = read_json(out / "run.json")
    assert record["status"] == "complete" and record["resumed"] == [2], record
    assert record["training"]["processes"] == 2 and record["distributed"]["launcher"] == "RANK/WORLD_SIZE", record
    assert len((out / "history.csv").read_text().splitlines()) == 4


@pytest.mark.parametrize("variable", ["TORCHELASTIC_RESTART_COUNT", "SLURM_RESTART_COUNT"])
def test_a_restarted_command_resumes_an_unfinished_run_with_a_checkpoint(variable, tmp_path, monkeypatch):
    from core.engine.distributed import elastic_restart

    for name in ("TORCHELASTIC_RESTART_COUNT", "SLURM_RESTART_COUNT"):
        monkeypatch.delenv(name, raising=False)
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"status": "failed"}))
    assert not elastic_restart(run)  # the first start
    monkeypatch.setenv(variable, "1")
    assert not elastic_restart(run)  # stopped before its first checkpoint: started again
    (run / "checkpoint.json").write_text("{}")
    assert elastic_restart(run)
    (run / "run.json").write_text(json.dumps({"status": "complete"}))
    assert not elastic_restart(run)  # a finished run is refused as before
