"""Keras's own levers on a small model, measured side by side in one process (run under each
KERAS_BACKEND; bench/run.py puts the table in bench/results.md).

cnn/digits, batch 64, plain ``model.fit`` of ``EPOCHS`` epochs at a time, the settings taking turns
(so that machine noise hits all alike); median steady epoch (all but each fit's first) over
``ROUNDS`` rounds after a warm-up round, ms:

- ``base``: no callback (Keras dispatches batch-end callbacks asynchronously where it can);
- ``batch_hook``: a callback with an ``on_train_batch_end`` hook, as kerastack's Ctrl-C checker
  and Keras's TerminateOnNaN have: Keras then calls the batch-end hooks synchronously;
- ``batch_hook_async``: the same hook marked ``async_safe``;
- ``begin_hook``: the check in ``on_train_batch_begin`` instead (kerastack's Ctrl-C checker now);
- ``spe4`` / ``spe8``: ``steps_per_execution`` 4 / 8 (not torch);
- ``jit_on`` / ``jit_off``: ``jit_compile`` forced (the default is "auto");
- ``tf_data``: the arrays fed as repeated tf.data pipelines with ``steps_per_epoch``
  (core/engine/backends/tensorflow.py, what kerastack does under TensorFlow), TensorFlow only.

Prints one JSON line.
"""

import importlib
import json
import statistics
import sys
from pathlib import Path

import keras

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import timing_plugin  # noqa: E402

from core.data import spec_of  # noqa: E402

BACKEND = keras.backend.backend()
ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
EPOCHS = 3


class BatchHook(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        pass


class AsyncBatchHook(BatchHook):
    async_safe = True


class BeginHook(keras.callbacks.Callback):
    def on_train_batch_begin(self, batch, logs=None):
        pass


SETTINGS = {
    "base": ({}, []),
    "batch_hook": ({}, [BatchHook]),
    "batch_hook_async": ({}, [AsyncBatchHook]),
    "begin_hook": ({}, [BeginHook]),
    "spe4": ({"steps_per_execution": 4}, []),
    "spe8": ({"steps_per_execution": 8}, []),
    "jit_on": ({"jit_compile": True}, []),
    "jit_off": ({"jit_compile": False}, []),
    "tf_data": ({}, []),
}
if BACKEND != "tensorflow":
    SETTINGS.pop("tf_data")
if BACKEND == "torch":
    for name in ("spe4", "spe8"):  # Keras refuses steps_per_execution > 1 on torch
        SETTINGS.pop(name)

dataset = importlib.import_module("plugins.datasets.digits").load()
(x, y), val = dataset.train, dataset.validation
models = {}
for name, (compile_args, _) in SETTINGS.items():
    keras.utils.set_random_seed(0)
    model = importlib.import_module("plugins.architectures.cnn").build(spec_of(dataset))
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        **compile_args,
    )
    models[name] = model


def data(name):
    if name == "tf_data":
        from core.engine.backends.tensorflow import fit_arguments

        return fit_arguments((x, y), val, 64, seed=0)
    return {"x": x, "y": y, "batch_size": 64, "validation_data": val}


times = {name: [] for name in SETTINGS}
for round_ in range(ROUNDS + 1):
    for name, (_, callbacks) in SETTINGS.items():
        timer = timing_plugin.make()
        models[name].fit(**data(name), epochs=EPOCHS, verbose=0, callbacks=[c() for c in callbacks] + [timer])
        if round_:  # the first round compiles
            times[name] += [e["total"] for e in timer.epochs[1:]]
print(
    json.dumps(
        {
            "backend": BACKEND,
            "rounds": ROUNDS,
            "epochs": EPOCHS,
            "epoch_ms": {k: round(1000 * statistics.median(v), 1) for k, v in times.items()},
        }
    )
)
