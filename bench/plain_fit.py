"""The baseline: the same model, data, batch size and optimizer trained by a hand-written
``model.fit`` script, without kerastack's training path.

Usage: plain_fit.py ARCH DATA EPOCHS BATCH HPARAMS_JSON DATA_OPTIONS_JSON
(the architecture's build() and the dataset's load() are called directly, as a user would).
"""

import importlib
import json
import sys
from pathlib import Path

import keras

sys.path.insert(0, str(Path(__file__).parent))
import timing_plugin  # noqa: E402

from core.data import spec_of  # noqa: E402

arch, data, epochs, batch, hparams, data_options = sys.argv[1:7]
keras.utils.set_random_seed(0)
dataset = importlib.import_module(f"plugins.datasets.{data}").load(**json.loads(data_options))
model = importlib.import_module(f"plugins.architectures.{arch}").build(spec_of(dataset), **json.loads(hparams))
model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
x, y = dataset.train
model.fit(
    x,
    y,
    batch_size=int(batch),
    epochs=int(epochs),
    validation_data=dataset.validation,
    verbose=0,
    callbacks=[timing_plugin.make()],
)
