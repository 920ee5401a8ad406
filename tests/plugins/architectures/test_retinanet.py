"""``retinanet`` (KerasHub's RetinaNet backbone and feature pyramid, RetinaNet heads and anchors):
a small random model learns the boxes of ``shapes task=detection``; its .tflite selects the final
detections in the graph (float32 and int8) and verify scores both runtimes; a ``save_to_preset``
folder gives its backbone and weights, a RetinaNet's or an image encoder's. Offline: no preset is
downloaded. One process per backend trains once and does all that backend's checks."""

import json

import pytest
from conftest import one_line_error, read_json, run_cli, run_python

pytestmark = pytest.mark.slow

DATA = {"task": "detection", "size": 64, "samples": 500, "boxes": 2}
HPARAMS = {"anchor_size": 2}  # anchors of 16-25 pixels at stride 8: the shapes' boxes are 14-22
EPOCHS = {"tensorflow": 4, "jax": 2, "torch": 2}

JOB = """
import json, sys
import numpy as np
import keras, keras_hub
from core import DataSpec, load_run, train
from core.deploy.export import export
from core.deploy.verify import verify
from plugins.architectures import retinanet
from tflite.runner import TFLiteModel

backend, out, data, hparams, epochs = sys.argv[1], sys.argv[2], *map(json.loads, sys.argv[3:5]), int(sys.argv[5])
run = train("retinanet", "shapes", backend=backend, data_options=data, hparams=hparams, epochs=epochs,
            batch_size=16, checkpoint_every=0, out=out + "/run", seed=0, verbose=0)
report = {"metrics": run.metrics, "losses": [row["loss"] for row in load_run(run.path).history],
          "output": list(run.model.output_shape), "params": run.model.count_params()}
for path in export(run.path, "tflite", {"quantize": "none,int8", "calibration_samples": 64}):
    if path.suffix != ".tflite":
        continue
    lite = TFLiteModel(path)
    (signature,) = lite._interpreter.get_signature_list().values()
    report[path.stem] = {
        "verify": {k: v for k, v in verify(path, run.path, latency_runs=5).items() if k != "file"},
        "ops": sorted(set(lite.op_names())),
        "subgraphs": lite._interpreter._interpreter.NumSubgraphs(),
        "outputs": signature["outputs"],
    }

if backend == "tensorflow":
    # Preset folders, as save_to_preset writes them, weights set to known values: a RetinaNet
    # backbone (encoder and feature pyramid) is taken whole; an image encoder gets a new pyramid.
    spec = DataSpec((64, 64, 1), 3, task="detection")
    encoder = retinanet._small_encoder(keras_hub, (64, 64, 3))
    whole = keras_hub.models.RetinaNetBackbone(image_encoder=encoder, min_level=3, max_level=5, use_p5=False,
                                               image_shape=(64, 64, 3))
    for i, w in enumerate(whole.weights):
        w.assign(np.full(w.shape, 0.01 * (i % 7), dtype="float32"))
    whole.save_to_preset(out + "/retinanet_preset")
    encoder.save_to_preset(out + "/encoder_preset")
    for name, saved in (("retinanet_preset", whole), ("encoder_preset", encoder)):
        model = retinanet.build(spec, preset=out + "/" + name, anchor_size=2)
        inner = [l for l in model.layers if isinstance(l, keras_hub.models.RetinaNetBackbone)][0]
        mine = inner if name == "retinanet_preset" else inner.get_layer("backbone")
        report[name] = {
            "same_weights": [bool(np.array_equal(a, b)) for a, b in zip(mine.get_weights(), saved.get_weights())],
            "levels": [inner.min_level, inner.max_level],
            "output": list(model.output_shape),
            "layers": [l.name for l in model.layers],
            "frozen_batchnorm": all(not l.trainable for l in inner._flatten_layers()
                                    if isinstance(l, keras.layers.BatchNormalization)),
        }
json.dump(report, open(out + "/report.json", "w"))
"""


# make test trains TensorFlow's; make test-all JAX's and torch's too (two epochs: they learn and
# their files export and verify).
@pytest.fixture(
    scope="module",
    params=["tensorflow", pytest.param("jax", marks=pytest.mark.sweep), pytest.param("torch", marks=pytest.mark.sweep)],
)
def report(request, tmp_path_factory):
    backend = request.param
    out = tmp_path_factory.mktemp(f"retinanet-{backend}")
    args = (json.dumps(DATA), json.dumps(HPARAMS), EPOCHS[backend])
    run_python(JOB, backend, out, *args, env={"KERAS_BACKEND": backend}, timeout=1200)
    return backend, read_json(out / "report.json")


def test_learns_the_boxes(report):
    backend, report = report
    assert report["output"] == [None, 9 * (64 + 16 + 4), 4 + 3]  # 9 anchors at strides 8, 16, 32 of 64x64
    losses = report["losses"]
    assert losses[-1] < 0.7 * losses[0], losses
    # A constant detector scores ~0 (test_yolo.py measures it); four epochs find most boxes.
    if backend == "tensorflow":
        assert report["metrics"]["test_map50"] > 0.3, report["metrics"]
        assert {"test_ap_circle", "test_ap_square", "test_ap_triangle"} <= set(report["metrics"])


def test_tflite_selects_the_boxes_in_the_graph(report):
    _, report = report
    for name in ("model_float32", "model_int8"):
        lite = report[name]
        assert lite["subgraphs"] == 1 and "NON_MAX_SUPPRESSION_V5" in lite["ops"], lite
        assert not [op for op in lite["ops"] if op.startswith("Flex")], lite["ops"]
        assert lite["outputs"] == ["detection_boxes", "detection_classes", "detection_scores", "num_detections"]


def test_verify_scores_both_runtimes(report):
    backend, report = report
    keras_map50 = report["metrics"]["test_map50"]
    float32, int8 = report["model_float32"]["verify"], report["model_int8"]["verify"]
    assert float32["keras_map50"] == pytest.approx(keras_map50, abs=1e-6), float32
    assert abs(float32["tflite_map50"] - keras_map50) <= 1e-3 and float32["agreement"] >= 0.98, float32
    assert {"tflite_map50", "tflite_map", "keras_map", "agreement", "matched_boxes"} <= set(int8), int8
    if backend == "tensorflow":  # a trained detector: int8 keeps its mAP
        assert abs(int8["tflite_map50"] - keras_map50) <= 0.05, int8


@pytest.mark.parametrize("name", ["retinanet_preset", "encoder_preset"])
def test_a_preset_folder_gives_its_backbone_and_weights(report, name):
    backend, report = report
    if backend != "tensorflow":
        pytest.skip("built once, under TensorFlow")
    preset = report[name]
    assert preset["same_weights"] and all(preset["same_weights"]), preset
    assert preset["levels"] == [3, 5]
    assert preset["output"] == [None, 9 * (64 + 16 + 4), 4 + 3]
    assert "pixel_preprocessing" in preset["layers"] and preset["frozen_batchnorm"], preset


@pytest.mark.parametrize(
    ("hparams", "data", "expected"),
    [
        ({"preset": "retinanet_resnet50_fpn_cocco"}, {}, "retinanet_resnet50_fpn_coco"),  # did you mean
        ({"max_level": 5}, {"size": 40}, "divisible by 32"),
        ({"min_level": 6, "max_level": 5}, {}, "min_level <= max_level"),
    ],
)
def test_bad_settings_are_one_line_errors(tmp_path, hparams, data, expected):
    args = ["train", "--arch", "retinanet", "--data", "shapes", "--backend", "tensorflow"]
    args += ["--data-opt", "task=detection"]
    args += [f"--data-opt={k}={v}" for k, v in data.items()]
    args += [f"--hp={k}={v}" for k, v in hparams.items()]
    result = run_cli(*args, "--epochs", "1", "--out", str(tmp_path / "run"))
    line = one_line_error(result, 2)  # a usage error: the --hp or the data's size
    assert "retinanet" in line and expected in line, line
