"""Transfer learning: --init-from, --freeze backbone, fine-tuning, LoRA — in one TensorFlow process."""

import pytest
from conftest import read_json, run_cli, run_python

pytestmark = pytest.mark.slow

JOB = """
import json, sys
import numpy as np
from core import export, train
from core.engine.transfer import weighted_layers
from tflite import TFLiteModel
out = sys.argv[1]
report = {}
source = train("cnn", "digits", epochs=1, seed=0, out=out + "/source", verbose=0)
frozen = train("cnn", "shapes", epochs=1, seed=1, out=out + "/frozen", init_from=source.path,
               freeze="backbone", data_options={"samples": 300}, verbose=0)
# Layers in model order: names shift when one process builds several models.
src = [l.get_weights() for l in weighted_layers(source.model)]
layers = weighted_layers(frozen.model)
report["backbone_equal"] = all(
    all(np.array_equal(a, b) for a, b in zip(l.get_weights(), s)) for l, s in zip(layers[:-1], src))
report["head_shape"] = [list(w.shape) for w in layers[-1].get_weights()]
report["frozen_params"] = [frozen.metrics["trainable_params"], frozen.metrics["total_params"]]
report["head_params"] = int(sum(w.size for w in layers[-1].get_weights()))
report["frozen_record"] = frozen.record["transfer"]

tuned = train("cnn", "digits", epochs=1, seed=2, out=out + "/tuned", init_from=source.path,
              learning_rate=1e-4, verbose=0)
report["tuned_all_changed"] = all(
    not all(np.array_equal(a, b) for a, b in zip(l.get_weights(), s))
    for l, s in zip(weighted_layers(tuned.model), src) if l.trainable_weights)
report["tuned_lr"] = float(np.asarray(tuned.model.optimizer.learning_rate))

base = train("mlp", "digits", epochs=1, seed=0, out=out + "/base", hparams={"units": (256, 256)}, verbose=0)
lora = train("mlp", "digits", epochs=2, seed=3, out=out + "/lora", hparams={"units": (256, 256)},
             init_from=base.path, lora_rank=4, verbose=0)
report["lora_params"] = [lora.metrics["trainable_params"], lora.metrics["total_params"]]
report["lora_record"] = lora.record["transfer"]
report["lora_accuracy"] = [base.metrics["val_accuracy"], lora.metrics["val_accuracy"]]
plain = TFLiteModel(export(base.path, "tflite")[0]).op_names()
merged = TFLiteModel(export(lora.path, "tflite")[0])
report["lora_ops"] = [sorted(set(plain)), sorted(set(merged.op_names()))]
x = np.random.default_rng(0).random((32, 8, 8, 1), dtype=np.float32)
report["lora_tflite_diff"] = float(np.abs(merged.predict(x) - np.asarray(lora.model.predict(x, verbose=0))).max())
json.dump(report, open(out + "/report.json", "w"))
"""


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("transfer")
    run_python(JOB, out, env={"KERAS_BACKEND": "tensorflow"})
    return out, read_json(out / "report.json")


def test_frozen_backbone_updates_only_the_head(report):
    _, r = report
    assert r["backbone_equal"], "a frozen backbone layer changed"
    assert r["head_shape"] == [[64, 3], [3]]  # a new 3-class head for shapes
    assert r["frozen_params"][0] == r["head_params"] < r["frozen_params"][1] / 10
    assert r["frozen_record"]["matched_layers"] == r["frozen_record"]["layers"] - 1


def test_fine_tuning_changes_every_layer_at_the_given_rate(report):
    _, r = report
    assert r["tuned_all_changed"] and r["tuned_lr"] == pytest.approx(1e-4)


def test_lora_trains_few_parameters_and_exports_merged(report):
    _, r = report
    trainable, total = r["lora_params"]
    assert trainable <= 0.1 * total, r["lora_params"]
    assert r["lora_record"]["lora_layers"] and r["lora_record"]["lora_rank"] == 4
    assert r["lora_accuracy"][1] >= 0.8, r["lora_accuracy"]
    plain_ops, lora_ops = r["lora_ops"]
    assert lora_ops == plain_ops, "LoRA left extra ops in the .tflite"
    assert r["lora_tflite_diff"] <= 1e-4


def test_init_from_cli_reports_matches(report, tmp_path):
    out, _ = report
    proc = run_cli(
        "train",
        "--arch",
        "cnn",
        "--data",
        "digits",
        "--epochs",
        "1",
        "--steps-per-epoch",
        "2",
        "--init-from",
        out / "source",
        "--freeze",
        "backbone",
        "--out",
        tmp_path / "r",
        "--quiet",
    )
    assert proc.returncode == 0, proc.stderr
    assert "10 of 10 layers matched" in proc.stdout
    line = run_cli("train", "--arch", "cnn", "--data", "digits", "--freeze", "everything").stderr.strip()
    assert line == "kerastack: error: --freeze 'everything': valid: none, backbone"
