"""The fit: the callbacks, ``model.fit`` on the data as the backend takes it, then the test metrics and plots."""

import sys

import numpy as np

from core.data import batches, is_pair, targets_for
from core.engine import sanity
from core.engine.callbacks import checkpointer, higher_is_better, history_writer, interrupt_checker, nan_stopper
from core.engine.datasets import predict_batches
from core.errors import KerastackError, one_line
from core.files import atomic_path
from core.runs import HISTORY_FILE
from core.runs.plots import PREDICTIONS_FILE
from core.task import task_named


def fit(model, job, callbacks, verbose):
    from core.engine.augment import augmented

    dataset, opts, spec, initial_epoch = job.dataset, job.opts, job.spec, job.initial_epoch
    train, val = targets_for(spec.task, dataset.train), targets_for(spec.task, dataset.validation)
    common = dict(epochs=opts.epochs, callbacks=callbacks, verbose=verbose, initial_epoch=initial_epoch)
    if opts.steps_per_epoch:
        common.update(steps_per_epoch=opts.steps_per_epoch, validation_steps=opts.steps_per_epoch)
    if job.interrupts is not None:
        job.interrupts.check()  # a Ctrl-C that Python could not raise (in a gc callback) stops here
        job.interrupts.in_fit = True
    try:
        if is_pair(train):
            if opts.steps_per_epoch:  # a quick check: no more samples than the steps will use
                n = opts.steps_per_epoch * opts.batch_size
                train = (train[0][:n], None if train[1] is None else train[1][:n])
                val = None if val is None else (val[0][:n], None if val[1] is None else val[1][:n])
            val = tuple(val) if val is not None else None
            if opts.distribute == "data" and not opts.augment:  # each process its shard of each batch
                stream = job.engine.shard(job.keras, train, opts, job.seed, initial_epoch)
                size, val = job.engine.eval_batch_size(opts), job.engine.eval_split(val)
                common["callbacks"] = [stream.callback, *callbacks]
                return model.fit(stream, validation_data=val, validation_batch_size=size, **common)
            if opts.augment:
                stream = augmented(train[0], train[1], opts.batch_size, opts.augment, job.seed + initial_epoch)
                return model.fit(stream, validation_data=val, **common)
            fed = job.engine.array_feed(model, train, val, opts, job.seed + initial_epoch)
            if fed is not None:  # the backend's own way to feed arrays
                return model.fit(**{**common, **fed})
            return model.fit(train[0], train[1], batch_size=opts.batch_size, validation_data=val, **common)
        if opts.distribute == "data":
            train = job.engine.shard_stream(job.keras, train)
        return model.fit(train, validation_data=val, **common)
    except (KerastackError, KeyboardInterrupt):
        raise
    except Exception as exc:
        raise KerastackError(
            f"training {job.arch!r} on {job.data!r} (input shape {spec.input_shape}) failed: "
            f"{one_line(exc, first=True)}"
        ) from exc
    finally:
        if job.interrupts is not None:
            job.interrupts.in_fit = False


def fit_callbacks(job, out, rows, resume_from, writer=None, seconds=None):
    """The core's callbacks (history, NaN stop, checkpoints, TensorBoard, early stopping), then the
    plugins'; ``writer`` writes the history and checkpoints in the background; ``seconds`` (a
    function) gives the run's training time so far, which each checkpoint keeps."""
    keras, opts = job.keras, job.opts
    best = resume_from.get("best") if resume_from else None
    cbs = job.engine.log_reducers() + [
        history_writer(out / HISTORY_FILE, rows, writer),
        nan_stopper(),
        checkpointer(out, opts.checkpoint_every, opts.monitor, best, writer, seconds),
    ]
    if opts.tensorboard:
        cbs.append(keras.callbacks.TensorBoard(log_dir=str(out / "tensorboard")))
    if opts.early_stopping:
        cbs.append(
            keras.callbacks.EarlyStopping(
                opts.monitor,
                patience=opts.early_stopping,
                restore_best_weights=True,
                verbose=1,
                mode="max" if higher_is_better(opts.monitor) else "min",  # as best.keras judges it
            )
        )
    # Last: an interrupted epoch's history and checkpoint are written before training stops.
    stop = [interrupt_checker(job.interrupts)] if job.interrupts is not None else []
    return cbs + job.callbacks + stop


def check_finite(history, opts):
    losses = history.history.get("loss", [])
    if losses and not np.isfinite(losses[-1]):
        raise KerastackError(
            f"training diverged: the loss became {losses[-1]} at epoch {len(losses)}; try a lower "
            f"--learning-rate (now {opts.learning_rate or 'the default'}), --clip-norm 1.0, "
            "--warmup 0.1, or --precision float32"
        )


def evaluate(model, job, metrics, out):
    """Test metrics into ``metrics``: Keras's compiled ones, then the task's scorer on the evaluation
    split (``test_``, ``validation_`` or ``train_`` + its metrics, e.g. ``test_mean_iou``); the task's
    ``predictions.npz``. Returns the warnings about the model (for run.json), said on stderr too: a
    model with class ids whose outputs are constant."""
    dataset, spec = job.dataset, job.spec
    task = task_named(spec.task)
    if dataset.test is not None:
        test = targets_for(spec.task, dataset.test)
        if is_pair(test):
            size = job.engine.eval_batch_size(job.opts)
            if job.opts.distribute == "data":  # each process its part; the metrics reduced over them
                test = job.engine.eval_split(tuple(test))
            result = model.evaluate(test[0], test[1], batch_size=size, verbose=0, return_dict=True)
        else:
            result = model.evaluate(test, verbose=0, return_dict=True)
        metrics.update({f"test_{k}": float(v) for k, v in result.items()})
    if not task.supervised:
        return []
    name, split = dataset.evaluation_split()
    # Batch by batch, keeping sums and the task's predictions only: a streamed split is never all in memory.
    scorer, saved, spread = task.scorer(dataset.info, spec.class_names), [], sanity.OutputSpread()
    for x, y, outputs in predict_batches(model, batches(split, 256)):
        if y is None:
            return []
        x, y = task.targets(x, y)
        outputs = task.deployed(outputs)
        scorer.add(x, y, outputs)
        spread.add(outputs)
        kept = task.predictions(y, outputs)
        if kept is not None:
            saved.append(kept)
    metrics.update({f"{name}_{k}": v for k, v in scorer.keras_result().items() if f"{name}_{k}" not in metrics})
    if not saved:
        return []
    arrays = {key: np.concatenate([batch[key] for batch in saved]) for key in saved[0]}
    with atomic_path(out / PREDICTIONS_FILE) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays, split=np.array(name))
    if not task.classes or "y_pred" not in arrays:
        return []
    warning = sanity.constant_outputs_warning(spread, arrays["y_true"], arrays["y_pred"], name, spec.class_names)
    if warning:
        print(f"kerastack: warning: {warning}", file=sys.stderr)
        return [warning]
    return []


def plots(out):
    """curves.png and confusion.png; a plotting failure must not fail a finished run."""
    from core.runs.plots import write_run_plots

    try:
        write_run_plots(out)
    except Exception as exc:  # noqa: BLE001
        print(f"kerastack: warning: could not draw the plots of {out}: {type(exc).__name__}: {exc}", file=sys.stderr)
