"""Arrays fed to fit under TensorFlow as repeated tf.data pipelines (core/engine/backends/tensorflow.py): every
epoch is still one reshuffled pass with a partial last batch, validation is read in order, and a
training makes one iterator for its training split instead of two per epoch."""

import pytest
from conftest import run_python

pytestmark = pytest.mark.slow

CHECKS = """
import json
import numpy as np
import keras
import tensorflow as tf
from core.engine.backends.tensorflow import fit_arguments

x, y = np.arange(10, dtype="float32")[:, None] * [1, -1], np.arange(10)
args = fit_arguments((x, y), (x[:5], y[:5]), batch_size=4, seed=0)
report = {"steps": args["steps_per_epoch"], "validation_steps": args["validation_steps"], "shuffle": args["shuffle"]}
batches = list(args["x"].take(2 * args["steps_per_epoch"]).as_numpy_iterator())
report["sizes"] = [len(b[1]) for b in batches]
report["epochs"] = [np.concatenate([b[1] for b in batches[i : i + 3]]).tolist() for i in (0, 3)]
report["rows_match"] = all(np.array_equal(b[0][:, 0], b[1]) and np.array_equal(b[0][:, 1], -b[1]) for b in batches)
report["validation"] = [b[1].tolist() for b in args["validation_data"].take(4).as_numpy_iterator()]

# several inputs given as a list, no targets (a generative task), no validation split
multi = fit_arguments(([x, x[:, :1]], None), None, batch_size=10, seed=0)
first = next(iter(multi["x"]))
report["multi"] = [list(t.shape) for t in first] + [sorted(multi)]
# 3 batches a pass, 2 steps a compiled call: the call would run into the next pass
report["uneven"] = fit_arguments((x, y), None, batch_size=4, seed=0, steps_per_execution=2)
report["even"] = sorted(fit_arguments((x, y), (x, y), batch_size=4, seed=0, steps_per_execution=3) or {})
# the training split even (3 batches), the validation split not (2): validation from the arrays
mixed = fit_arguments((x, y), (x[:8], y[:8]), batch_size=4, seed=0, steps_per_execution=3)
report["mixed"] = [type(mixed["validation_data"]).__name__, mixed["validation_batch_size"], "validation_steps" in mixed]

# fit with the pipelines: iterators made during a 3-epoch training (Keras makes 4 an epoch from arrays)
made = []
from tensorflow.python.data.ops import iterator_ops
original = iterator_ops.OwnedIterator._create_iterator
def counting(self, dataset):
    made.append(1)
    return original(self, dataset)
iterator_ops.OwnedIterator._create_iterator = counting
model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(10, activation="softmax")])
model.compile("adam", "sparse_categorical_crossentropy")
report["iterators_pipelines"] = []
for epochs in (3, 6):
    made.clear()
    history = model.fit(**fit_arguments((x, y), (x[:5], y[:5]), batch_size=4, seed=0), epochs=epochs, verbose=0)
    report["iterators_pipelines"].append(len(made))
made.clear()
model.fit(x, y, batch_size=4, validation_data=(x[:5], y[:5]), epochs=3, verbose=0)
report["iterators_arrays"] = len(made)
report["val_loss_epochs"] = len(history.history["val_loss"])  # the 6-epoch training's
print("REPORT" + json.dumps(report))
"""


def test_tf_data_epochs_are_reshuffled_passes_and_one_iterator_serves_the_training(tmp_path):
    proc = run_python(CHECKS, env={"KERAS_BACKEND": "tensorflow"})
    report = __import__("json").loads(proc.stdout.split("REPORT", 1)[1])
    assert report["steps"] == 3 and report["validation_steps"] == 2 and report["shuffle"] is False
    assert report["sizes"] == [4, 4, 2, 4, 4, 2]  # each pass ends with its partial batch
    first, second = report["epochs"]
    assert sorted(first) == sorted(second) == list(range(10)) and first != second  # reshuffled passes
    assert report["rows_match"]  # inputs and targets gathered with the same indices
    assert report["validation"] == [[0, 1, 2, 3], [4], [0, 1, 2, 3], [4]]  # in order, repeated
    assert report["multi"] == [[10, 2], [10, 1], ["shuffle", "steps_per_epoch", "x"]]
    assert report["uneven"] is None and "validation_steps" in report["even"]
    assert report["mixed"] == ["tuple", 4, False]
    assert report["val_loss_epochs"] == 6
    # arrays: 2 iterators per split and epoch; pipelines: one for the training, and one per epoch
    # for the validation (Keras's evaluate resets its iterator)
    three, six = report["iterators_pipelines"]
    assert six - three == 3 and three <= 5 and report["iterators_arrays"] == 12, report
