"""Why the backends differ on this machine's CPU, and which knobs help: run under one backend
(KERAS_BACKEND), prints one JSON line. Called by bench/run.py once per backend.

- ``layers``: one training step (forward + backward + SGD update) and one forward pass of a single
  convolution layer on a 64×16×16×144 batch, ms. Depthwise is MobileNet's layer; 3×3 and 1×1 are
  ResNet's and MobileNet's pointwise layers.
- ``knobs``: the default CNN on digits, trained by plain ``model.fit``: steady epoch, ms, at batch
  64 and 256 with ``steps_per_execution`` 1 and 8 (torch refuses more than 1).
"""

import json
import statistics
import sys
import time
from pathlib import Path

import keras
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import timing_plugin  # noqa: E402

from core.data import spec_of  # noqa: E402
from plugins.architectures import cnn  # noqa: E402
from plugins.datasets import digits  # noqa: E402


def median_ms(fn, runs=7):
    fn()  # compile / warm up
    walls = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        walls.append(time.perf_counter() - started)
    return round(1000 * statistics.median(walls), 1)


def layers():
    x = np.random.default_rng(0).random((64, 16, 16, 144), dtype=np.float32)
    y = np.zeros((64, 144), np.float32)
    out = {}
    for name, layer in (
        ("depthwise 3×3", keras.layers.DepthwiseConv2D(3, padding="same")),
        ("conv 3×3", keras.layers.Conv2D(144, 3, padding="same")),
        ("conv 1×1", keras.layers.Conv2D(144, 1)),
    ):
        inputs = keras.Input(x.shape[1:])
        model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(layer(inputs)))
        model.compile("sgd", "mse")
        out[name] = {
            "train_step": median_ms(lambda m=model: m.train_on_batch(x, y)),
            "forward": median_ms(lambda m=model: m.predict_on_batch(x)),
        }
    return out


def knobs(epochs=5):
    dataset = digits.load()
    out = {}
    for batch in (64, 256):
        for spe in (1, 8):
            keras.utils.set_random_seed(0)
            model = cnn.build(spec_of(dataset))
            model.compile(
                optimizer=keras.optimizers.Adam(1e-3),
                loss="sparse_categorical_crossentropy",
                metrics=["accuracy"],
                steps_per_execution=spe,
            )
            times, key = timing_plugin.make(), f"batch {batch}, steps_per_execution {spe}"
            try:
                model.fit(
                    *dataset.train,
                    batch_size=batch,
                    epochs=epochs,
                    validation_data=dataset.validation,
                    verbose=0,
                    callbacks=[times],
                )
            except ValueError:  # torch: steps_per_execution must be 1
                out[key] = None
                continue
            out[key] = round(1000 * statistics.median(e["total"] for e in times.epochs[1:]))
    return out


if __name__ == "__main__":
    print(json.dumps({"backend": keras.backend.backend(), "layers": layers(), "knobs": knobs()}))
