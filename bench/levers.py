"""Keras's own levers on a small model, measured side by side in one process (run under each
KERAS_BACKEND; bench/run.py puts the table in bench/results.md).

cnn/digits, batch 64, plain ``model.fit`` of one epoch at a time, the settings taking turns epoch
by epoch (so that machine noise hits all alike); median epoch time over ``ROUNDS`` rounds after a
warm-up round, ms:

- ``base``: no callback (Keras dispatches batch-end callbacks asynchronously where it can);
- ``batch_hook``: a callback with an ``on_train_batch_end`` hook, as kerastack's Ctrl-C checker
  and Keras's TerminateOnNaN have: Keras then calls the batch-end hooks synchronously;
- ``batch_hook_async``: the same hook marked ``async_safe``;
- ``begin_hook``: the check in ``on_train_batch_begin`` instead (kerastack's Ctrl-C checker now);
- ``spe4`` / ``spe8``: ``steps_per_execution`` 4 / 8 (not torch);
- ``jit_on`` / ``jit_off``: ``jit_compile`` forced (the default is "auto").

Prints one JSON line.
"""

import importlib
import json
import statistics
import sys
import time
from pathlib import Path

import keras

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from core.data import spec_of  # noqa: E402

BACKEND = keras.backend.backend()
ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 5


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
}
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

times = {name: [] for name in SETTINGS}
for round_ in range(ROUNDS + 1):
    for name, (_, callbacks) in SETTINGS.items():
        started = time.perf_counter()
        models[name].fit(
            x, y, batch_size=64, epochs=1, validation_data=val, verbose=0, callbacks=[c() for c in callbacks]
        )
        if round_:  # the first round compiles
            times[name].append(time.perf_counter() - started)
print(
    json.dumps(
        {
            "backend": BACKEND,
            "rounds": ROUNDS,
            "epoch_ms": {k: round(1000 * statistics.median(v), 1) for k, v in times.items()},
        }
    )
)
