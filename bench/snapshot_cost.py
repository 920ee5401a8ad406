"""What an epoch-end checkpoint costs the training thread, per way of doing it (run under each
KERAS_BACKEND; bench/run.py runs it for every backend and puts the table in bench/results.md).

For cnn/digits and the ~1 M-parameter resnet of bench/run.py, after one epoch of ``fit``, median
of several calls, ms:

- ``save_file``: ``model.save`` to a file then fsync (what kerastack did on the training thread);
- ``save_memory``: ``model.save`` into an in-memory buffer (the disk write left to a thread);
- ``config``: the model's config JSON (``saving_lib._serialize_model_as_json``);
- ``walk``: the first snapshot (Keras's save walk, recording the variables, and the host copy);
- ``copy_convert``: a later snapshot's host copy, ``keras.ops.convert_to_numpy`` then ``np.array``
  (what kerastack does); ``copy_numpy``: ``variable.numpy()``; ``copy_device_get`` (JAX):
  ``jax.device_get`` of all the values at once, then ``np.array``;
- ``background``: building and writing the .keras from the copy (in the writer's thread).

And checks that the file built from the copy loads with the same weights and optimizer state as
``model.save``'s. Prints one JSON line.
"""

import importlib
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import keras
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from core.data import spec_of  # noqa: E402
from core.engine.snapshots import Snapshotter, write_snapshot  # noqa: E402

BACKEND = keras.backend.backend()


def timed(fn, n=7):
    times = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def model_for(arch, data, hparams, data_options):
    keras.utils.set_random_seed(0)
    dataset = importlib.import_module(f"plugins.datasets.{data}").load(**data_options)
    model = importlib.import_module(f"plugins.architectures.{arch}").build(spec_of(dataset), **hparams)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = dataset.train
    n = 64 * 8
    model.fit(x[:n], y[:n], batch_size=64, epochs=1, verbose=0)
    return model


def measure(model, scratch):
    out = {}

    def save_file():
        path = scratch / "a.keras"
        model.save(path)
        with open(path, "rb") as f:
            os.fsync(f.fileno())

    out["save_file"] = timed(save_file)
    from keras.src.saving import saving_lib

    out["save_memory"] = timed(lambda: saving_lib.save_model(model, io.BytesIO()))

    out["config"] = timed(lambda: saving_lib._serialize_model_as_json(model))
    out["walk"] = timed(lambda: Snapshotter(model).take(), n=3)
    snapshots = Snapshotter(model)
    snapshots.take()
    out["copy_convert"] = timed(snapshots.take)
    variables = [v for _, _, items in snapshots.plan for _, v in items]
    out["copy_numpy"] = timed(lambda: [np.array(v.numpy(), copy=True) for v in variables])
    if BACKEND == "jax":
        import jax

        out["copy_device_get"] = timed(
            lambda: [np.array(a, copy=True) for a in jax.device_get([v.value for v in variables])]
        )
    snapshot = snapshots.take()
    out["background"] = timed(lambda: write_snapshot(snapshot, scratch / "b.keras"))
    out["mb"] = sum(a.nbytes for _, _, items in snapshot.groups for _, a in items) / 2**20
    # The same state as model.save's file?
    model.save(scratch / "a.keras")
    a, b = (keras.saving.load_model(scratch / name) for name in ("a.keras", "b.keras"))
    same = all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a.weights, b.weights))
    same &= all(
        np.array_equal(keras.ops.convert_to_numpy(x), keras.ops.convert_to_numpy(y))
        for x, y in zip(a.optimizer.variables, b.optimizer.variables)
    )
    out["same_as_model_save"] = bool(same and len(a.optimizer.variables) == len(model.optimizer.variables))
    return out


def main():
    from run import MODELS  # bench/run.py's rows

    result = {"backend": BACKEND, "models": {}}
    with tempfile.TemporaryDirectory() as scratch:
        for name, m in MODELS.items():
            model = model_for(m["arch"], m["data"], m["hparams"], m["data_options"])
            result["models"][name] = {
                k: round(v, 2) if isinstance(v, float) else v for k, v in measure(model, Path(scratch)).items()
            }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
