"""A kerastack plugin for the benchmark: a callback that records each epoch's wall time.

The same callback class is used by the plain-Keras baseline script, so both sides measure alike.
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
        def __init__(self):
            super().__init__()
            self.times = []

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self.started)
            with open(os.environ["KERASTACK_BENCH_TIMES"], "w") as f:
                json.dump(self.times, f)

    return EpochTimes()
