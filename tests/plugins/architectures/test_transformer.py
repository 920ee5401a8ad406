"""``transformer``: learns token order where an MLP cannot, reads series too, checks its settings."""

import pytest
from conftest import read_json, run_python

pytestmark = pytest.mark.slow

# One TensorFlow process (the fastest on CPU) does all the keras work of this module.
JOB = """
import json, sys
from core import DataSpec, KerastackError, train
from plugins.architectures.transformer import build
out = sys.argv[1]
fast = dict(backend="tensorflow", batch_size=16, checkpoint_every=0, seed=0, verbose=0)
attention = train("transformer", "tokens", epochs=5, out=out + "/transformer", **fast)
bag = train("mlp", "tokens", epochs=3, out=out + "/mlp", **fast)
ids, series = DataSpec((24,), 2, input_dtype="int32", vocab_size=50), DataSpec((64, 3), 4)
errors = {}
for name, call in {
    "image": lambda: train("transformer", "digits", backend="tensorflow", out=out + "/digits", verbose=0),
    "heads": lambda: build(ids, dim=30, heads=4),
}.items():
    try:
        call()
    except (KerastackError, ValueError) as exc:
        errors[name] = str(exc)
json.dump({
    "transformer": attention.metrics["test_accuracy"], "mlp": bag.metrics["test_accuracy"],
    "custom_modules": attention.record["custom_modules"],
    "layers": {name: [type(layer).__name__ for layer in build(spec).layers[:3]]
               for name, spec in {"ids": ids, "series": series}.items()},
    "params": {b: build(ids, blocks=b).count_params() for b in (1, 2)},
    "errors": errors,
}, open(out + "/report.json", "w"))
"""


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("transformer")
    run_python(JOB, out, env={"KERAS_BACKEND": "tensorflow"})
    return read_json(out / "report.json")


def test_learns_which_marker_comes_first(report):
    assert report["transformer"] >= 0.9, report


def test_a_bag_of_words_mlp_cannot(report):
    # Both markers occur in every sequence: only their order tells the class.
    assert report["mlp"] <= 0.65, report


def test_embeds_token_ids_and_projects_series(report):
    assert report["layers"]["ids"] == ["InputLayer", "Embedding", "PositionEmbedding"]
    assert report["layers"]["series"] == ["InputLayer", "Dense", "PositionEmbedding"]
    assert report["params"]["1"] < report["params"]["2"]


def test_records_the_module_of_its_custom_layer(report):
    assert report["custom_modules"] == ["plugins.architectures._layers.attention"]


def test_bad_settings_are_one_line_errors(report):
    errors = report["errors"]
    assert "transformer needs int token ids (timesteps,) with a vocab_size or sequences" in errors["image"]
    assert "the dataset gives (8, 8, 1)" in errors["image"]
    assert "dim=30, heads=4" in errors["heads"]
    assert all("\n" not in e for e in errors.values()), errors
