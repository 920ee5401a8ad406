"""Callbacks the core adds to every run. Keras is imported inside, after the backend is chosen."""


def history_writer(path):
    """A callback that rewrites ``history.csv`` atomically after every epoch.

    Keras's CSVLogger appends in place, so a crash mid-write can leave a torn last line; here a
    reader always sees the whole history up to the last finished epoch.
    """
    import keras

    from .runs import write_csv

    class HistoryWriter(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.rows = []

        def on_epoch_end(self, epoch, logs=None):
            row = {"epoch": epoch + 1}
            row.update({k: float(v) for k, v in sorted((logs or {}).items())})
            self.rows.append(row)
            write_csv(path, self.rows)

    return HistoryWriter()
