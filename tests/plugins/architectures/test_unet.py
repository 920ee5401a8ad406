"""``unet``: learns the masks of ``shapes``, keeps its mean IoU in int8 LiteRT, grows with its
hyperparameters, and says which image sizes it needs. Training under JAX and torch, reloading and
exporting each backend's run: test_zoo.py."""

import pytest
from conftest import one_line_error, read_json, run_cli, run_python

pytestmark = pytest.mark.slow

DATA = {"task": "segmentation", "size": 32, "samples": 600}

# One TensorFlow process (the fastest on CPU) trains once and does all the keras work of this module.
JOB = """
import json, sys
import numpy as np
from core import DataSpec, train
from core.deploy.export import export
from plugins.architectures.unet import build
from plugins.datasets import shapes
from plugins.tasks._segmentation_metrics import confusion, scores
from tflite.runner import TFLiteModel

out, data = sys.argv[1], json.loads(sys.argv[2])
run = train("unet", "shapes", backend="tensorflow", data_options=data, epochs=10, batch_size=16,
            learning_rate=0.003, checkpoint_every=0, out=out + "/run", seed=0, verbose=0)
x, y = shapes.load(**data).test
names = ("background", "circle", "square", "triangle")
report = {"metrics": run.metrics, "keras": scores(confusion(y, run.model.predict(x, verbose=0), 4), names)}
for path in export(run.path, "tflite", {"quantize": "none,int8", "calibration_samples": 64}):
    if path.suffix != ".tflite":
        continue
    lite = TFLiteModel(path)
    report[path.stem] = scores(confusion(y, lite.predict(x), 4), names) | {"ops": sorted(set(lite.op_names()))}

# --augment on masks, through training (each mask moved with its image: tests/core/engine/test_augment.py).
augmented = train("unet", "shapes", backend="tensorflow", data_options={**data, "samples": 120}, epochs=1,
                  batch_size=16, augment=("flip", "rotate"), checkpoint_every=0, out=out + "/augmented", seed=0,
                  verbose=0)
report["augmented"] = augmented.metrics

image = DataSpec((32, 32, 1), 4, task="segmentation")
def params(**hp):
    return build(image, **hp).count_params()
report["params"] = {"default": params(), "filters": params(filters=16), "depth": params(depth=3)}
plain = build(image, batchnorm=False, dropout=0.2)
report["layers"] = sorted({type(l).__name__ for l in plain.layers})
report["shapes"] = [list(build(DataSpec((48, 64, 3), 5, task="segmentation"), depth=4).output_shape),
                    list(build(DataSpec((16, 24), 2, task="segmentation")).output_shape)]
json.dump(report, open(out + "/report.json", "w"))
"""


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    import json

    out = tmp_path_factory.mktemp("unet")
    run_python(JOB, out, json.dumps(DATA), env={"KERAS_BACKEND": "tensorflow"})
    return read_json(out / "report.json")


def test_learns_the_masks(report):
    keras = report["keras"]
    # Background alone is ~0.81 of the pixels: the IoU of every shape says the model sees them.
    assert keras["pixel_accuracy"] >= 0.97 and keras["mean_iou"] >= 0.85, keras
    assert min(keras["iou_per_class"].values()) >= 0.7, keras
    assert abs(report["metrics"]["test_accuracy"] - keras["pixel_accuracy"]) < 1e-4


def test_int8_keeps_mean_iou_within_one_point(report):
    files = [k for k in report if k.endswith(("float32", "int8"))]
    assert len(files) == 2, sorted(report)
    for name in files:
        assert abs(report[name]["mean_iou"] - report["keras"]["mean_iou"]) <= 0.01, (name, report[name])
        assert not [op for op in report[name]["ops"] if op.startswith("Flex")], report[name]["ops"]
    assert "TRANSPOSE_CONV" in report[files[0]]["ops"] and "CONCATENATION" in report[files[0]]["ops"]


def test_trains_with_augmented_masks(report):
    metrics = report["augmented"]
    assert 0 < metrics["loss"] < 5 and 0 <= metrics["test_accuracy"] <= 1, metrics


def test_hyperparameters_change_the_model(report):
    p = report["params"]
    assert p["default"] < p["filters"] and p["default"] < p["depth"], p
    assert "BatchNormalization" not in report["layers"] and "Dropout" in report["layers"], report["layers"]


def test_any_size_divisible_by_two_to_the_depth_and_grayscale_without_channel_axis(report):
    assert report["shapes"] == [[None, 48, 64, 5], [None, 16, 24, 2]]


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--data-opt", "size=30"],
            "unet with depth=2 needs height and width divisible by 4 (2**depth); the images are 30x30: "
            "resize them (e.g. --data-opt size=32) or lower --hp depth",
        ),
        (
            ["--data-opt", "task=classification"],
            "architecture 'unet' supports segmentation; dataset 'shapes' is classification",
        ),
    ],
)
def test_wrong_data_is_a_one_line_error(tmp_path, args, message):
    proc = run_cli(
        "train", "--arch", "unet", "--data", "shapes", "--data-opt", "task=segmentation", *args,
        "--backend", "jax", "--epochs", "1", "--out", tmp_path / "run",
    )  # fmt: skip
    line = one_line_error(proc, 1 if "depth" in message else 2)
    assert message in line, line
