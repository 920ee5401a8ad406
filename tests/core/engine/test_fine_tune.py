"""--fine-tune-after / --fine-tune-factor checks, run.json's ``initial_weights``, and a fine-tuning
run resumed where fine-tuning starts (the pretrained training itself is tested in
tests/plugins/architectures/test_pretrained.py)."""

import hashlib
import io
import zipfile

import h5py
import numpy as np
import pytest
from conftest import read_json, run_cli

from core import UsageError, train
from core.engine.options import make_options
from core.engine.transfer import weights_source


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"fine_tune_after": 3, "epochs": 3}, "--fine-tune-after 3 must be less than --epochs (3)"),
        ({"fine_tune_after": 0}, "--fine-tune-after must be at least 1"),
        ({"fine_tune_factor": 0}, "--fine-tune-factor must lie in (0, 1]"),
        ({"fine_tune_factor": "1.5"}, "--fine-tune-factor must lie in (0, 1]"),
    ],
)
def test_bad_fine_tuning_options_are_usage_errors(given, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make_options(given)


def test_fine_tune_after_needs_a_frozen_backbone(tmp_path):
    with pytest.raises(UsageError, match="--fine-tune-after 1 needs --freeze backbone"):
        train("mlp", "iris", epochs=2, fine_tune_after=1, out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_initial_weights_say_where_the_weights_came_from(tmp_path):
    weights = tmp_path / "w.weights.h5"
    weights.write_bytes(b"not really weights")
    preset = tmp_path / "preset"
    preset.mkdir()
    assert weights_source({}, None) == {"source": "random"}
    assert weights_source({"weights": "none"}, None) == {"source": "random"}
    assert weights_source({"weights": "imagenet"}, None) == {"source": "imagenet"}
    assert weights_source({"weights": str(weights)}, None) == {
        "source": "file",
        "path": str(weights.resolve()),
        "sha256": hashlib.sha256(b"not really weights").hexdigest(),
    }
    assert weights_source({"preset": str(preset)}, None) == {"source": "preset", "path": str(preset.resolve())}
    assert weights_source({"preset": "bert_tiny_en_uncased"}, None) == {
        "source": "preset",
        "name": "bert_tiny_en_uncased",
    }
    run = weights_source({"weights": "imagenet"}, tmp_path)
    assert run == {"source": "run", "run": str(tmp_path.resolve()), "architecture_weights": {"source": "imagenet"}}


STOP_AFTER_FIRST_EPOCH = """
import os
import signal

from core import hookimpl


@hookimpl
def register_callbacks(register):
    register("stop_after_first_epoch", make, summary="Ctrl-C at the end of the first epoch")


def make():
    import keras

    class Stop(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                os.kill(os.getpid(), signal.SIGINT)

    return Stop()
"""


@pytest.mark.slow
def test_a_run_resumed_where_fine_tuning_starts_switches_and_a_same_architecture_backbone_keeps_its_head(tmp_path):
    """--init-from a run of the same architecture matches every layer: --freeze backbone still trains
    the head. Interrupted at the end of epoch N = --fine-tune-after (its checkpoint is the frozen
    model's), the resumed run unfreezes and recompiles before going on."""
    plugin = tmp_path / "stop.py"
    plugin.write_text(STOP_AFTER_FIRST_EPOCH)
    common = ["--arch", "mlp", "--data", "iris", "--seed", "0", "--backend", "jax", "--quiet"]
    source = run_cli("train", *common, "--epochs", "1", "--out", tmp_path / "a")
    assert source.returncode == 0, source.stderr
    out = tmp_path / "b"
    args = ["--init-from", tmp_path / "a", "--freeze", "backbone", "--fine-tune-after", "1", "--epochs", "2"]
    stopped = run_cli("--plugin", plugin, "train", *common, *args, "--callback", "stop_after_first_epoch", "--out", out)
    assert stopped.returncode == 130, stopped.stderr
    assert read_json(out / "checkpoint.json")["epoch"] == 1
    before, after = _weights(tmp_path / "a" / "model.keras"), _weights(out / "checkpoint.keras")
    changed = {name for name in before if not np.array_equal(before[name], after[name])}
    assert changed and changed != set(before), changed  # the head trained, the backbone did not

    resumed = run_cli("train", "--resume", out, "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert "fine-tuning every layer from epoch 2" in resumed.stdout, resumed.stdout
    record = read_json(out / "run.json")
    assert record["status"] == "complete" and record["transfer"]["fine_tune_rate"] == pytest.approx(1e-4)
    metrics = read_json(out / "metrics.json")
    assert metrics["epochs"] == 2 and metrics["fine_tuned_params"] == metrics["total_params"] > 0
    assert f"parameters trained, {metrics['total_params']:,} from epoch 2)" in resumed.stdout, resumed.stdout


def _weights(path):
    """Each layer's variables in a .keras file, by their path in its weights file."""
    found = {}

    def keep(name, item):  # visititems stops at the first call that returns something
        if isinstance(item, h5py.Dataset):
            found[name] = item[()]

    with zipfile.ZipFile(path) as archive, h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r") as f:
        f["layers"].visititems(keep)
    return found
