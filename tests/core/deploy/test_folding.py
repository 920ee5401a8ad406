"""``fold_output_rescaling``: a regression model's output Rescaling folded into the layer before it,
exactly, and left alone where folding would change what the model computes."""

import pytest
from conftest import read_json, run_python

pytestmark = pytest.mark.slow

JOB = """
import json, sys
import numpy as np
import keras
from core import fold_output_rescaling
out = sys.argv[1]
rng = np.random.default_rng(0)
report = {}

def check(name, inputs, outputs, x):
    model = keras.Model(inputs, outputs, name=name)
    folded = fold_output_rescaling(model)
    before = [w.copy() for w in model.get_weights()]
    diff = float(np.abs(np.asarray(folded.predict(x, verbose=0)) - np.asarray(model.predict(x, verbose=0))).max())
    report[name] = {
        "folded": folded is not model,
        "layers": [type(l).__name__ for l in folded.layers],
        "diff": diff,
        "model_unchanged": all(np.array_equal(a, b) for a, b in zip(before, model.get_weights())),
    }

x = rng.normal(size=(16, 4)).astype("float32")
i = keras.Input((4,))
check("dense", i, keras.layers.Rescaling(7.5, offset=50.0)(keras.layers.Dense(1)(keras.layers.Dense(8, "relu")(i))), x)
i = keras.Input((4,))
check("columns", i, keras.layers.Rescaling([2.0, 30.0], offset=[-1.0, 100.0])(keras.layers.Dense(2)(i)), x)
series = rng.normal(size=(16, 6, 3)).astype("float32")
i = keras.Input((6, 3))
check("conv1d", i, keras.layers.Rescaling(3.0, offset=9.0)(keras.layers.Conv1D(1, 3)(i)), series)
i = keras.Input((4,))
check("activation", i, keras.layers.Rescaling(7.5, offset=50.0)(keras.layers.Dense(1, "tanh")(i)), x)
i = keras.Input((4,))
check("no_bias", i, keras.layers.Rescaling(7.5, offset=50.0)(keras.layers.Dense(1, use_bias=False)(i)), x)
i = keras.Input((4,))
h = keras.layers.Dense(1)(i)
check("shared", i, keras.layers.Add()([keras.layers.Rescaling(7.5, offset=50.0)(h), h]), x)
i = keras.Input((4,))
check("plain", i, keras.layers.Dense(1)(i), x)
json.dump(report, open(out + "/report.json", "w"))
"""


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("folding")
    run_python(JOB, out, env={"KERAS_BACKEND": "tensorflow"})
    return read_json(out / "report.json")


@pytest.mark.parametrize("name", ["dense", "columns", "conv1d"])
def test_an_output_rescaling_folds_into_the_linear_layer_before_it(report, name):
    case = report[name]
    assert case["folded"] and "Rescaling" not in case["layers"], case
    assert case["diff"] <= 1e-4 and case["model_unchanged"], case


@pytest.mark.parametrize("name", ["activation", "no_bias", "shared", "plain"])
def test_what_folding_would_change_is_left_alone(report, name):
    assert not report[name]["folded"], report[name]
