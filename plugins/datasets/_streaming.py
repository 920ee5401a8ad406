"""Splits read from disk a batch at a time: a ``keras.utils.PyDataset`` over a list of files.

Not a plugin (the leading ``_``): dataset plugins import it inside ``load``, after the core has
chosen the backend, because importing it imports keras.
"""

import keras
import numpy as np


class FileBatches(keras.utils.PyDataset):
    """``(x, y)`` batches: ``read(path)`` stacked for ``batch_size`` files, and their int32 labels.

    Only the files of the batch asked for are read. With ``shuffle``, the order is a permutation
    drawn from ``seed`` at the start and again after every epoch; without, it is the given order.
    """

    def __init__(self, paths, labels, read, batch_size=32, shuffle=False, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.paths = list(paths)
        self.labels = np.asarray(labels, dtype="int32")
        self.read = read
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self._rng = np.random.default_rng(seed)
        self.order = self._new_order()

    def _new_order(self):
        n = len(self.paths)
        return self._rng.permutation(n) if self.shuffle else np.arange(n)

    def __len__(self):
        return -(-len(self.paths) // self.batch_size)

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} of {len(self)}")
        rows = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        return np.stack([self.read(self.paths[i]) for i in rows]), self.labels[rows]

    def on_epoch_end(self):
        self.order = self._new_order()
