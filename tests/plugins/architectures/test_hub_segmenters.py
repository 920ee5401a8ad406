"""``deeplab_v3`` and ``segformer`` (KerasHub): small random models train and export with builtin
ops, and a preset folder written by ``save_to_preset`` gives its backbone, weights included. Offline:
no preset is downloaded."""

import pytest
from conftest import read_json, run_python

pytestmark = pytest.mark.slow

# One TensorFlow process does all the keras work of this module.
JOB = """
import json, sys
import numpy as np
import keras
import keras_hub
from core import DataSpec, train
from core.deploy.export import export
from plugins.architectures import hub_segmenters
from tflite.runner import TFLiteModel

out = sys.argv[1]
report = {}
data = {"task": "segmentation", "size": 32, "samples": 120}
for arch in ("deeplab_v3", "segformer"):
    run = train(arch, "shapes", backend="tensorflow", data_options=data, epochs=1, steps_per_epoch=2,
                batch_size=16, checkpoint_every=0, out=f"{out}/{arch}", seed=0, verbose=0)
    row = {"loss": run.metrics["loss"], "output": list(run.model.output_shape)}
    if arch == "segformer":  # the smaller one: exported as every run would be
        for path in export(run.path, "tflite", {"quantize": "none,int8", "calibration_samples": 16}):
            if path.suffix == ".tflite":
                lite = TFLiteModel(path)
                x = np.random.default_rng(0).random((2, 32, 32, 1), dtype=np.float32)
                row[path.stem] = {"ops": sorted(set(lite.op_names())), "shape": list(lite.predict(x).shape),
                                  "diff": float(np.abs(lite.predict(x) - run.model.predict(x, verbose=0)).max())}
    report[arch] = row

# A preset folder: a KerasHub segmenter saved with save_to_preset (here the small DeepLabV3+, its
# weights set to known values); the new model takes its backbone and weights, and a new head.
spec = DataSpec((32, 32, 3), 5, task="segmentation")
backbone = hub_segmenters._small("deeplab_v3", keras_hub, (32, 32, 3))
for i, w in enumerate(backbone.weights):
    w.assign(np.full(w.shape, 0.01 * (i % 7), dtype="float32"))
saved = keras_hub.models.DeepLabV3ImageSegmenter(backbone=backbone, num_classes=21)
saved.save_to_preset(out + "/preset")
model = hub_segmenters.build_deeplab_v3(spec, preset=out + "/preset")
inner = [l for l in model.layers if isinstance(l, keras_hub.models.Backbone)][0]
report["preset"] = {
    "same_weights": all(np.array_equal(a, b) for a, b in zip(inner.get_weights(), backbone.get_weights())),
    "output": list(model.output_shape),
    "layers": [l.name for l in model.layers],
}
json.dump(report, open(out + "/report.json", "w"))
"""


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("hub_segmenters")
    run_python(JOB, out, env={"KERAS_BACKEND": "tensorflow"})
    return read_json(out / "report.json")


@pytest.mark.parametrize("arch", ["deeplab_v3", "segformer"])
def test_small_random_models_train_at_the_input_size(report, arch):
    assert report[arch]["output"] == [None, 32, 32, 4], report[arch]
    assert 0 < report[arch]["loss"] < 10, report[arch]


def test_segformer_exports_with_builtin_ops(report):
    for name in ("model_float32", "model_int8"):
        row = report["segformer"][name]
        assert not [op for op in row["ops"] if op.startswith("Flex")], row["ops"]
        assert row["shape"] == [2, 32, 32, 4]


def test_segformer_float32_file_computes_what_keras_does(report):
    assert report["segformer"]["model_float32"]["diff"] < 1e-4


def test_a_preset_folder_gives_its_backbone_and_weights_with_a_new_head(report):
    preset = report["preset"]
    assert preset["same_weights"], preset
    assert preset["output"] == [None, 32, 32, 5]
    assert "pixel_preprocessing" in preset["layers"] and "head" in preset["layers"], preset["layers"]
