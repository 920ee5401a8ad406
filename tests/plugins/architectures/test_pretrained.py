"""keras.applications backbones, offline: every one builds with weights=none and a new head; a
weights file saved here loads back equal (weights=PATH); mobilenet_v3_small "pretrained" here (trained
from scratch, BatchNorm statistics recomputed on the data, saved as a file) trains its head with
--freeze backbone, is fine-tuned after an epoch (--fine-tune-after) with its BatchNorm kept in
inference mode, exports int8 with builtin ops and verifies; the bad inputs fail in one line."""

import pytest
from conftest import NO_NETWORK, one_line_error, read_json, run_cli, run_python

pytestmark = pytest.mark.slow

# One TensorFlow process for all the keras work. The proxy makes any download fail at once.
JOB = """
import json, os, sys
import numpy as np
import keras
from core import DataSpec, KerastackError, export, train, verify
from plugins.architectures.pretrained import BACKBONES, build
from plugins.datasets.shapes import load
from tflite import TFLiteModel
out = sys.argv[1]
report = {}
spec = DataSpec((32, 32, 1), 3)
small = {"mobilenet_v2": {"alpha": 0.35}, "mobilenet_v3_small": {"alpha": 0.75}, "mobilenet_v3_large": {"alpha": 0.75}}
built = {}
for arch in BACKBONES:
    model = build(arch, spec, weights="none", **small.get(arch, {}))
    built[arch] = {"classes": model.output_shape[-1], "backbone": model.get_layer("backbone").count_params(),
                   "layers": [l.name for l in model.layers]}
    del model
report["built"] = built

# "Pretrained": trained from scratch, then BatchNorm statistics recomputed on the data (from one
# training-mode pass), as a checkpoint of a converged run would hold them; saved as a weights file.
data = {"samples": 450, "size": 32}
hp = {"weights": "none", "alpha": 0.75}
base = train("mobilenet_v3_small", "shapes", epochs=5, seed=0, out=out + "/base", hparams=hp, data_options=data,
             learning_rate=0.003, checkpoint_every=0, verbose=0)
backbone = base.model.get_layer("backbone")
norms = [l for l in backbone.layers if isinstance(l, keras.layers.BatchNormalization)]
probe = keras.Model(backbone.input, [l.input for l in norms])
pixels = keras.Model(base.model.input, base.model.get_layer("pixel_preprocessing").output)
x = load(**data).train[0][:256]
for layer, seen in zip(norms, probe(pixels(x), training=True)):
    seen = np.asarray(seen)
    gamma, beta, _, _ = layer.get_weights()
    layer.set_weights([gamma, beta, seen.mean((0, 1, 2)), seen.var((0, 1, 2))])
weights = out + "/backbone.weights.h5"
backbone.save_weights(weights)
again = build("mobilenet_v3_small", DataSpec((32, 32, 1), 3), weights=weights, alpha=0.75)
report["file_equal"] = all(np.array_equal(a, b) for a, b in
                           zip(backbone.get_weights(), again.get_layer("backbone").get_weights()))

tuned = train("mobilenet_v3_small", "shapes", epochs=3, seed=1, out=out + "/tuned", data_options=data,
              hparams={"weights": weights, "alpha": 0.75}, freeze="backbone", fine_tune_after=1,
              learning_rate=0.003, checkpoint_every=0, verbose=0)
report["tuned_metrics"] = tuned.metrics
report["tuned_record"] = {k: tuned.record[k] for k in ("transfer", "initial_weights", "training")}
moving = [w for l in tuned.model.get_layer("backbone").layers if isinstance(l, keras.layers.BatchNormalization)
          for w in l.get_weights()[2:]]
saved = [w for l in norms for w in l.get_weights()[2:]]
report["statistics_kept"] = all(np.array_equal(a, b) for a, b in zip(moving, saved))
changed = [not np.array_equal(a, b) for a, b in zip(tuned.model.get_layer("backbone").trainable_weights,
                                                      again.get_layer("backbone").trainable_weights)]
report["fine_tuned_fraction"] = sum(changed) / len(changed)
files = [str(p) for p in export(tuned.path, "tflite", {"quantize": "none,int8"}) if str(p).endswith(".tflite")]
report["verify"] = {os.path.basename(f): {k: v for k, v in verify(f, tuned.path, latency_runs=5).items()
                                          if k in ("agreement", "tflite_accuracy", "keras_accuracy", "max_abs_diff")}
                    for f in files}
report["ops"] = sorted(set(op for f in files for op in TFLiteModel(f).op_names()))
report["model_json"] = json.load(open(tuned.path / "export" / "tflite" / "model.json"))

errors = {}
for name, call in {
    "foreign_file": lambda: train("mobilenet_v2", "shapes", hparams={"weights": weights, "size": 32},
                                  out=out + "/bad1", verbose=0),
    "too_small": lambda: train("efficientnet_b0", "shapes", hparams={"weights": "none"}, out=out + "/bad2",
                               verbose=0),
    "text": lambda: train("resnet50", "tokens", hparams={"weights": "none"}, out=out + "/bad3", verbose=0),
    "offline": lambda: train("mobilenet_v3_small", "shapes", hparams={"size": 32}, out=out + "/bad4", verbose=0),
    "no_file": lambda: train("convnext_tiny", "shapes", hparams={"weights": out + "/nothing.h5", "size": 32},
                             out=out + "/bad5", verbose=0),
}.items():
    try:
        call()
        errors[name] = None
    except KerastackError as exc:
        errors[name] = [type(exc).__name__, str(exc)]
report["errors"] = errors
report["left_behind"] = [n for n in os.listdir(out) if n.startswith("bad")]
json.dump(report, open(out + "/report.json", "w"))
"""


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    out = tmp_path_factory.mktemp("pretrained")
    env = {"KERAS_BACKEND": "tensorflow", "KERAS_HOME": str(out / "keras_home")}
    env.update(NO_NETWORK)
    run_python(JOB, out, env=env)
    return out, read_json(out / "report.json")


def test_every_backbone_builds_offline_with_a_new_head(job):
    _, r = job
    assert set(r["built"]) >= {
        "mobilenet_v2",
        "mobilenet_v3_small",
        "mobilenet_v3_large",
        "efficientnet_b0",
        "efficientnet_v2_b0",
        "resnet50",
        "convnext_tiny",
    }
    for arch, built in r["built"].items():
        assert built["classes"] == 3, arch
        assert built["layers"][-3:] == ["backbone", "head_dropout", "probabilities"], (arch, built["layers"])
        assert "pixel_preprocessing" in built["layers"], arch
    assert r["built"]["resnet50"]["backbone"] > 20e6 and r["built"]["mobilenet_v2"]["backbone"] < 1e6


def test_a_weights_file_loads_back_equal(job):
    _, r = job
    assert r["file_equal"]
    source = r["tuned_record"]["initial_weights"]
    assert source["source"] == "file" and source["path"].endswith("backbone.weights.h5") and len(source["sha256"]) == 64


def test_frozen_then_fine_tuned_with_batchnorm_statistics_kept(job):
    _, r = job
    transfer = r["tuned_record"]["transfer"]
    assert transfer["freeze"] == "backbone" and transfer["fine_tune_after"] == 1
    assert transfer["fine_tune_rate"] == pytest.approx(0.003 * 0.1)
    assert r["tuned_metrics"]["epochs"] == 3
    assert (
        r["tuned_metrics"]["trainable_params"] == 432 * 3 + 3
    )  # before fine-tuning: the head only (alpha 0.75: 432 features)
    assert r["statistics_kept"], "BatchNorm moving statistics changed: not in inference mode"
    assert r["fine_tuned_fraction"] > 0.9, r["fine_tuned_fraction"]


def test_fine_tuned_mobilenet_v3_small_exports_int8_and_agrees(job):
    _, r = job
    assert not [op for op in r["ops"] if op.startswith("Flex")], r["ops"]
    float32, int8 = r["verify"]["model_float32.tflite"], r["verify"]["model_int8.tflite"]
    assert float32["agreement"] == 1.0 and float32["max_abs_diff"] < 1e-4
    assert int8["keras_accuracy"] > 0.4, int8  # chance: 0.33
    assert int8["agreement"] >= AGREEMENT, int8
    (inside,) = r["model_json"]["model_preprocessing"]
    assert inside["scale"] == [255.0] * 3 and inside["then_inside_backbone"].startswith("Rescaling(1/127.5")


# Measured offline: 0.93 (the backbone here is not ImageNet-trained; see docs/findings.md). Issue 16 asks
# 0.98 of a fine-tuned ImageNet MobileNetV3-Small, which cannot be downloaded here.
AGREEMENT = 0.9


def test_bad_inputs_fail_in_one_line_and_write_nothing(job):
    out, r = job
    errors = r["errors"]
    kind, text = errors["foreign_file"]
    assert (
        kind == "UsageError" and "is not a mobilenet_v2 backbone's: layer 'Conv1' (Conv2D) has weights 3x3x3x32" in text
    )
    kind, text = errors["too_small"]
    assert kind == "UsageError" and "input size 16x16" in text and "sizes of 32 or more" in text
    kind, text = errors["text"]
    assert kind == "UsageError" and "takes images" in text and "token ids" in text
    kind, text = errors["offline"]
    assert kind == "KerastackError" and "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5" in text
    assert str(out / "keras_home" / "models") in text
    kind, text = errors["no_file"]
    assert kind == "UsageError" and "nothing.h5" in text
    assert all("\n" not in e[1] for e in errors.values())
    assert r["left_behind"] == []
    # The command line: exit 2, one line, no run folder (a refusal that comes before any backbone is built).
    proc = run_cli(
        "train", "--arch", "resnet50", "--data", "tokens", "--hp", "weights=none", "--out", out / "cli",
        env={"KERAS_BACKEND": "tensorflow"},
    )  # fmt: skip
    one_line_error(proc, 2)
    assert "takes images" in proc.stderr and not (out / "cli").exists()
