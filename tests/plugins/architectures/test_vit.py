"""``vit``: learns digits from patches, reloads its custom layer in a fresh process of another
backend, and names the image size and the patch when they do not fit."""

import pytest
from conftest import read_json, run_python

pytestmark = pytest.mark.slow

# One TensorFlow process (the fastest on CPU) trains and checks; a JAX process then reloads the run.
JOB = """
import json, sys
import numpy as np
from core import DataSpec, KerastackError, train
from plugins.architectures._layers.attention import PositionEmbedding
from plugins.architectures.vit import build
out = sys.argv[1]
run = train("vit", "digits", backend="tensorflow", epochs=4, batch_size=16, learning_rate=0.002,
            schedule="cosine", checkpoint_every=0, out=out + "/run", seed=0, verbose=0)
from plugins.datasets.digits import load
x = load().test[0][:32]
np.save(out + "/x.npy", x)
np.save(out + "/y.npy", run.model.predict(x, verbose=0))
layer = PositionEmbedding(stddev=0.5, name="positions")
again = PositionEmbedding.from_config(layer.get_config())
errors = {}
for name, call in {
    "patch": lambda: train("vit", "digits", backend="tensorflow", hparams={"patch": 3},
                           out=out + "/patch3", verbose=0),
    "tabular": lambda: build(DataSpec((4,), 3)),
}.items():
    try:
        call()
    except (KerastackError, ValueError) as exc:
        errors[name] = str(exc)
json.dump({
    "accuracy": run.metrics["test_accuracy"], "custom_modules": run.record["custom_modules"],
    "config": [layer.get_config() == again.get_config(), again.stddev, again.name],
    "tokens": {p: build(DataSpec((16, 16, 1), 3), patch=p).get_layer("patches").output.shape[1:3]
               for p in (2, 4, 8)},
    "errors": errors,
}, open(out + "/report.json", "w"))
"""

RELOAD = """
import json, sys
import keras, numpy as np
from core import load_run
out = sys.argv[1]
model = load_run(out + "/run").model
diff = np.abs(model.predict(np.load(out + "/x.npy"), verbose=0) - np.load(out + "/y.npy")).max()
json.dump({"backend": keras.backend.backend(), "diff": float(diff)}, open(out + "/reload.json", "w"))
"""


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    out = tmp_path_factory.mktemp("vit")
    run_python(JOB, out, env={"KERAS_BACKEND": "tensorflow"})
    return out


@pytest.fixture(scope="module")
def report(out):
    return read_json(out / "report.json")


def test_learns_digits(report):
    assert report["accuracy"] >= 0.8, report


def test_patch_size_sets_the_token_grid(report):
    assert report["tokens"] == {"2": [8, 8], "4": [4, 4], "8": [2, 2]}


def test_position_embedding_config_round_trips(report):
    assert report["config"] == [True, 0.5, "positions"]


def test_reloads_in_a_fresh_jax_process(out, report):
    assert report["custom_modules"] == ["plugins.architectures._layers.attention"]
    run_python(RELOAD, out, env={"KERAS_BACKEND": "jax"})
    reload = read_json(out / "reload.json")
    assert reload["backend"] == "jax" and reload["diff"] <= 1e-5, reload


def test_bad_inputs_are_one_line_errors(report):
    errors = report["errors"]
    assert "vit needs image sides (H, W) divisible by patch=3; the dataset gives (8, 8, 1)" in errors["patch"]
    assert "vit needs image inputs (H, W[, C]); the dataset gives (4,)" in errors["tabular"]
    assert all("\n" not in e for e in errors.values()), errors
