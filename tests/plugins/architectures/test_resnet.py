"""``resnet``: learns shapes, grows with ``width``, and refuses non-image inputs in one line."""

import pytest
from conftest import one_line_error, read_json, run_cli, run_python

pytestmark = pytest.mark.slow

# One TensorFlow process (the fastest on CPU) does all the keras work of this module.
JOB = """
import json, sys
from core import DataSpec, train
from plugins.architectures.resnet import build
out = sys.argv[1]
run = train("resnet", "shapes", backend="tensorflow", hparams={"width": 8}, epochs=4, batch_size=16,
            learning_rate=0.003, schedule="cosine", checkpoint_every=0, out=out + "/run", seed=0, verbose=0)
image = DataSpec((16, 16, 1), 3)
json.dump({
    "accuracy": run.metrics["test_accuracy"],
    "params": {w: build(image, width=w).count_params() for w in (8, 16)},
    "deeper": build(image, width=8, depth=2).count_params(),
    "gray": build(DataSpec((16, 16), 3), width=8).output_shape,
}, open(out + "/report.json", "w"))
"""


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("resnet")
    run_python(JOB, out, env={"KERAS_BACKEND": "tensorflow"})
    return read_json(out / "report.json")


def test_learns_shapes(report):
    assert report["accuracy"] >= 0.9, report


def test_width_and_depth_change_the_size(report):
    assert report["params"]["8"] < report["params"]["16"]
    assert report["params"]["8"] < report["deeper"]


def test_grayscale_images_without_channel_axis(report):
    assert report["gray"] == [None, 3]


def test_tabular_input_is_a_one_line_error(tmp_path):
    proc = run_cli(
        "train", "--arch", "resnet", "--data", "iris", "--backend", "jax", "--epochs", "1", "--out", tmp_path / "run"
    )
    line = one_line_error(proc, 1)
    assert "resnet needs image inputs (H, W[, C])" in line and "(4,)" in line, line
