"""A kerastack plugin for the benchmark: a callback that times each epoch's parts.

The same callback class is used by the plain-Keras baseline script and bench/probe.py, so every
side measures alike.
It is the last callback of a kerastack run, so its epoch end comes after kerastack's own epoch-end
work (history.csv, checkpoints), which it times separately. It is ``async_safe``: its batch hook
(only the first batch's time is kept) must not turn off Keras's asynchronous callback dispatch.
"""

import json
import os
import time

from core import hookimpl


@hookimpl
def register_callbacks(register):
    register("epoch_times", make, summary="record epoch wall times to $KERASTACK_BENCH_TIMES")


def make():
    import keras

    class EpochTimes(keras.callbacks.Callback):
        async_safe = True

        def __init__(self):
            super().__init__()
            self.epochs, self.first_step_wall = [], None

        def on_train_batch_end(self, batch, logs=None):
            if self.first_step_wall is None:
                self.first_step_wall = time.time()  # wall clock: compared with the launch time

        def on_epoch_begin(self, epoch, logs=None):
            self.started = self.test_end = time.perf_counter()

        def on_test_end(self, logs=None):  # the validation pass ends the loop
            self.test_end = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            now = time.perf_counter()
            self.epochs.append(
                {"total": now - self.started, "loop": self.test_end - self.started, "end": now - self.test_end}
            )
            if "KERASTACK_BENCH_TIMES" in os.environ:  # a child process reports to bench/run.py
                with open(os.environ["KERASTACK_BENCH_TIMES"], "w") as f:
                    json.dump({"epochs": self.epochs, "first_step_wall": self.first_step_wall}, f)

    return EpochTimes()
