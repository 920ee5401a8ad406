"""--distribute on real multi-device set-ups built on one CPU: 4 XLA host devices (JAX) and 2
logical CPUs (TensorFlow MirroredStrategy)."""

import os

import pytest
from conftest import read_json, run_cli, run_python

pytestmark = pytest.mark.slow


def test_jax_data_parallel_matches_one_device(tmp_path):
    env = {"XLA_FLAGS": f"{os.environ['XLA_FLAGS']} --xla_force_host_platform_device_count=4", "KERAS_BACKEND": "jax"}
    runs = {}
    for mode in ("none", "data"):
        out = tmp_path / mode
        proc = run_cli(
            "train",
            "--arch",
            "cnn",
            "--data",
            "digits",
            "--epochs",
            "4",
            "--batch-size",
            "64",
            "--seed",
            "0",
            "--distribute",
            mode,
            "--out",
            out,
            "--quiet",
            env=env,
        )
        assert proc.returncode == 0, proc.stderr
        runs[mode] = read_json(out / "metrics.json")
    assert runs["data"]["val_accuracy"] >= 0.9 and runs["none"]["val_accuracy"] >= 0.9
    assert abs(runs["data"]["val_accuracy"] - runs["none"]["val_accuracy"]) <= 0.05, runs
    proc = run_python(
        """
        import jax, keras
        print("DEVICES", len(jax.devices()))
    """,
        env=env,
    )
    assert "DEVICES 4" in proc.stdout


def test_jax_model_parallel_shards_dense_kernels(tmp_path):
    proc = run_python(
        """
        import sys, keras
        from core import train
        run = train("mlp", "digits", epochs=2, batch_size=64, distribute="model", seed=0, out=sys.argv[1], verbose=0)
        kernel = [v for v in run.model.weights if v.path.endswith("kernel")][0]
        print("SHARDS", len(kernel.value.sharding.device_set), "ACC", run.metrics["val_accuracy"])
    """,
        tmp_path / "mp",
        env={
            "XLA_FLAGS": f"{os.environ['XLA_FLAGS']} --xla_force_host_platform_device_count=4",
            "KERAS_BACKEND": "jax",
        },
    )
    shards, acc = proc.stdout.split("SHARDS")[1].split()[0], float(proc.stdout.split("ACC")[1].split()[0])
    assert shards == "4" and acc >= 0.8, proc.stdout


def test_tensorflow_mirrored_strategy_on_two_logical_cpus(tmp_path):
    proc = run_python(
        """
        import sys
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from core import train
        run = train("cnn", "digits", epochs=4, batch_size=64, distribute="data", seed=0, out=sys.argv[1], verbose=0)
        print("REPLICAS", tf.distribute.get_strategy().num_replicas_in_sync, "ACC", run.metrics["val_accuracy"])
    """,
        tmp_path / "tf",
        env={"KERAS_BACKEND": "tensorflow"},
    )
    assert float(proc.stdout.split("ACC")[1].split()[0]) >= 0.9, proc.stdout


def test_torch_model_parallel_is_refused_clearly():
    # torch trains data-parallel in processes (--processes N, tests/core/engine/test_distributed.py).
    proc = run_cli("train", "--arch", "mlp", "--data", "digits", "--backend", "torch", "--distribute", "model")
    assert proc.returncode == 2
    assert "--distribute model needs the jax backend" in proc.stderr and "--distribute data" in proc.stderr
