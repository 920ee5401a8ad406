"""``mobilenet``: learns shapes, scales with ``alpha``, checks its settings, refuses non-images."""

import pytest
from conftest import read_json, run_python

pytestmark = pytest.mark.slow

# One TensorFlow process (the fastest on CPU) does all the keras work of this module.
JOB = """
import json, sys
from core import DataSpec, KerastackError, train
from plugins.architectures.mobilenet import build
out = sys.argv[1]
run = train("mobilenet", "shapes", backend="tensorflow", hparams={"alpha": 0.5}, epochs=4, batch_size=16,
            learning_rate=0.003, schedule="cosine", checkpoint_every=0, out=out + "/run", seed=0, verbose=0)
image = DataSpec((16, 16, 1), 3)
model = build(image)
errors = {}
for name, call in {
    "tabular": lambda: train("mobilenet", "iris", backend="tensorflow", out=out + "/iris", verbose=0),
    "stages": lambda: build(image, filters=(16, 24), blocks=(1,)),
}.items():
    try:
        call()
    except (KerastackError, ValueError) as exc:
        errors[name] = str(exc)
json.dump({
    "accuracy": run.metrics["test_accuracy"],
    "params": {a: build(image, alpha=a).count_params() for a in (0.5, 1.0)},
    "layers": sorted({type(layer).__name__ for layer in model.layers}),
    "relu6": sorted({layer.max_value for layer in model.layers if type(layer).__name__ == "ReLU"}),
    "adds": sum(type(layer).__name__ == "Add" for layer in model.layers),
    "errors": errors,
}, open(out + "/report.json", "w"))
"""


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("mobilenet")
    run_python(JOB, out, env={"KERAS_BACKEND": "tensorflow"})
    return read_json(out / "report.json")


def test_learns_shapes(report):
    assert report["accuracy"] >= 0.9, report


def test_alpha_scales_the_width(report):
    assert report["params"]["0.5"] < report["params"]["1.0"]


def test_inverted_residual_blocks_with_relu6(report):
    assert {"DepthwiseConv2D", "Conv2D", "Add"} <= set(report["layers"])
    assert report["relu6"] == [6.0]
    assert report["adds"] == 3  # one per stage: the stride-1 blocks whose channels in and out agree


def test_bad_settings_are_one_line_errors(report):
    errors = report["errors"]
    assert "mobilenet needs image inputs (H, W[, C]); the dataset gives (4,)" in errors["tabular"]
    assert "as many filters as blocks" in errors["stages"]
    assert "filters=(16, 24), blocks=(1,)" in errors["stages"]
    assert all("\n" not in e for e in errors.values()), errors
