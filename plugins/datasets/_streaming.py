"""Splits read from disk a batch at a time: a ``keras.utils.PyDataset`` over a list of files.

Not a plugin (the leading ``_``): dataset plugins import it inside ``load``, after the core has
chosen the backend, because importing it imports keras.
"""

import keras
import numpy as np


class FileBatches(keras.utils.PyDataset):
    """``(x, y)`` batches: ``read(path)`` stacked for ``batch_size`` files, and their int32 labels,
    or with ``read_target`` their targets read the same way, in the dtype it gives (a segmentation
    mask per image, int32; a detection's boxes, float32).

    Only the files of the batch asked for are read. With ``shuffle``, the order is a permutation
    drawn from ``seed`` at the start and again after every epoch; without, it is the given order.
    """

    def __init__(self, paths, labels, read, batch_size=32, shuffle=False, seed=0, read_target=None, **kwargs):
        super().__init__(**kwargs)
        self.read_target = read_target
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
        x = np.stack([self.read(self.paths[i]) for i in rows])
        if self.read_target is not None:
            return x, np.stack([self.read_target(self.paths[i]) for i in rows])
        return x, self.labels[rows]

    def on_epoch_end(self):
        self.order = self._new_order()


class StreamBatches(keras.utils.PyDataset):
    """``(x, y)`` batches of ``count`` examples read in sequence from a source without random access
    (TFDS's TFRecord files): ``examples(pass_number)`` starts a new pass, an iterator of ``(raw,
    label)``, and ``read(raw)`` makes one input (``read_target(label)`` one target in its own dtype,
    e.g. a mask; without, labels are int32).

    Keras's ``fit`` asks for a finite PyDataset's batches in shuffled index order. With ``shuffle``
    (a train split whose passes are shuffled at the source) the batch served is the next of the pass
    whatever index is asked, and ``on_epoch_begin`` starts a new pass: an epoch still reads every
    example once. Without, batch ``index`` is that batch: the pass reads on to it, or starts again for
    an earlier one.
    """

    def __init__(self, examples, count, read, batch_size=32, shuffle=False, read_target=None, **kwargs):
        super().__init__(**kwargs)
        self.examples, self.count, self.read, self.read_target = examples, int(count), read, read_target
        self.batch_size, self.shuffle = int(batch_size), shuffle
        self.passes, self._iterator, self._next = 0, None, 0

    def __len__(self):
        return -(-self.count // self.batch_size)

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} of {len(self)}")
        behind = not self.shuffle and index < self._next
        if self._iterator is None or self._next >= len(self) or behind:
            self._iterator, self._next = iter(self.examples(self.passes)), 0
            self.passes += 1
        if not self.shuffle:
            for _ in range(index - self._next):
                self._take()
        return self._take()

    def _take(self):
        rows = min(self.batch_size, self.count - self._next * self.batch_size)
        inputs, labels = [], []
        for _ in range(rows):
            raw, label = next(self._iterator)
            inputs.append(self.read(raw))
            labels.append(label if self.read_target is None else self.read_target(label))
        self._next += 1
        return np.stack(inputs), np.asarray(labels, dtype="int32") if self.read_target is None else np.stack(labels)

    def on_epoch_begin(self):
        self._iterator = None  # the next batch starts a new pass
