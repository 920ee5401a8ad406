"""Fine-tuning a run's model, shared by native QAT, native pruning and the tfmot jobs: load it in
this process's backend, fit it on the run's training split, evaluate it, save it."""

import logging
from pathlib import Path

import numpy as np

from core import UsageError


def batch_size_of(run, batch_size=0):
    """``batch_size``, else the run's training batch size, else 32."""
    return batch_size or run.record.get("training", {}).get("batch_size") or 32


def steps(run, dataset, epochs, batch_size=0):
    """The training steps ``fit`` takes for ``epochs`` (at least 1): whole batches of arrays, or the
    batches of a batched dataset."""
    from core import as_arrays, is_pair

    if is_pair(dataset.train):  # fit() trains on whole batches only
        per_epoch = max(1, len(as_arrays(dataset.train)[0]) // batch_size_of(run, batch_size))
    else:
        per_epoch = len(dataset.train)
    return max(1, epochs * per_epoch)


def save(model, out):
    """Save ``model`` to ``out`` (.keras), atomically."""
    from core import atomic_path

    with atomic_path(Path(out)) as tmp:
        model.save(tmp)


def load_for_finetuning(run_dir, what):
    """``(run, model, dataset)`` of a run, loaded in this process's backend (the model uncompiled:
    fine-tuning compiles it afresh)."""
    import keras

    from core import (
        float32_model,
        fold_output_rescaling,
        get_plugin_host,
        inference_model,
        load_dataset,
        load_model,
        load_run,
    )

    run = load_run(run_dir)
    dataset = load_dataset(run, get_plugin_host(run.record.get("plugins", [])))
    modules = run.record.get("custom_modules", ())
    model = (
        _load_weights_only(run.model_path, modules)
        if keras.backend.backend() == "jax"
        else load_model(run.model_path, modules, compile=False)
    )
    if inference_model(model) is not model:
        raise UsageError(
            f"{what}: the run deploys a part of its {type(model).__name__} model "
            "(inference_model()); fine-tuning needs a model that is deployed whole"
        )
    # A mixed-precision run fine-tunes and deploys in float32, and a regression model with its target
    # scaling folded into its last layer, as every exporter sees it (``deployed_model``).
    return run, fold_output_rescaling(float32_model(model)), dataset


_RANDOM_INITIALIZERS = {
    "GlorotUniform",
    "GlorotNormal",
    "HeUniform",
    "HeNormal",
    "LecunUniform",
    "LecunNormal",
    "RandomUniform",
    "RandomNormal",
    "TruncatedNormal",
    "VarianceScaling",
    "Orthogonal",
}


def _load_weights_only(path, modules=()):
    """Load a .keras model without drawing random initial weights that its saved ones replace.

    Under JAX each random draw of a new shape compiles (about a second each on a small CPU); the
    model is rebuilt from its config with zero initializers, then its weights are loaded. Its
    config then says "Zeros" where it said e.g. "GlorotUniform"; its weights are the run's.
    """
    import json
    import zipfile

    import keras

    from core import import_model_modules

    import_model_modules(path, modules)
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
    config.pop("compile_config", None)

    def zeros(obj):
        if isinstance(obj, dict):
            return {
                k: (
                    {"module": "keras.initializers", "class_name": "Zeros", "config": {}, "registered_name": None}
                    if k.endswith("_initializer")
                    and isinstance(v, dict)
                    and v.get("class_name") in _RANDOM_INITIALIZERS
                    else zeros(v)
                )
                for k, v in obj.items()
            }
        if isinstance(obj, list):
            return [zeros(v) for v in obj]
        return obj

    model = keras.saving.deserialize_keras_object(zeros(config), safe_mode=True)
    model.load_weights(path)
    return model


def _loss(run):
    """The run's task's loss and metrics (``core.Task``); a task without a default loss cannot be fine-tuned."""
    from core import task_named

    name = run.record.get("spec", {}).get("task")
    task = task_named(name)
    if task.loss is None:
        raise UsageError(f"fine-tuning needs a task with a default loss; this run's task {name!r} has none")
    return task.loss, list(task.metrics)


def fit(
    model,
    run,
    dataset,
    epochs,
    learning_rate,
    batch_size=0,
    callbacks=(),
    verbose=0,
    keras_module=None,
    seed=0,
    description="the model",
):
    """Compile ``model`` for the run's task with Adam(``learning_rate``) and fit the training split,
    with a progress bar on the user's terminal (``description`` says what is fine-tuned).

    ``keras_module``: the Keras the model is made of (``tf_keras`` for tfmot models; default Keras 3).
    """
    from core import is_pair, progress_bar, targets_for

    if keras_module is None:
        import keras as keras_module
    keras = keras_module

    task = run.record.get("spec", {}).get("task")
    loss, metrics = _loss(run)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss, metrics=metrics)
    train = targets_for(task, dataset.train)
    batch_size = batch_size_of(run, batch_size)
    # No validation data: one fewer function to compile (seconds under JAX); the exporter evaluates
    # the result on the test split.
    with progress_bar(None, f"fine-tuning ({description})") as bar:
        common = dict(epochs=epochs, callbacks=[*callbacks, _progress_callback(keras, bar)], verbose=verbose)
        if is_pair(train):
            x, y = _full_batches(train, batch_size, seed)
            return model.fit(x, y, batch_size=batch_size, shuffle=True, **common)
        return model.fit(train, **common)


def _progress_callback(keras, bar):
    """A callback (of ``keras``: Keras 3 or tf_keras) that moves ``bar`` at every training batch."""

    class Progress(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            steps, epochs = self.params.get("steps"), self.params.get("epochs")
            bar.set_total(steps * epochs if steps and epochs else None)

        def on_train_batch_end(self, batch, logs=None):
            bar.advance()

    return Progress()


def _full_batches(split, batch_size, seed):
    """A seeded random subset of whole batches: a last, smaller batch would compile the training
    step a second time (about as long as the whole fine-tuning of a small model under JAX)."""
    x, y = split
    n = len(x) - len(x) % batch_size if len(x) >= batch_size else len(x)
    chosen = np.sort(np.random.default_rng(seed).permutation(len(x))[:n])
    return x[chosen], (None if y is None else y[chosen])


def evaluate(model, dataset, task):
    """``{"split", ...}`` with the task's metrics (``accuracy``, ``mae``, ...) of ``model`` on the
    dataset's evaluation split."""
    from core import as_arrays, task_named

    name, split = dataset.evaluation_split()
    x, y = as_arrays(split)
    # Each model's predict traces anew; TensorFlow warns about "retracing" after five of them.
    tf_logger = logging.getLogger("tensorflow")
    level = tf_logger.level
    tf_logger.setLevel(logging.ERROR)
    try:
        pred = np.asarray(model.predict(x, batch_size=min(len(x), 1024), verbose=0), dtype="float32")
    finally:
        tf_logger.setLevel(level)
    kind = task_named(task)
    scorer = kind.scorer(getattr(dataset, "info", None), dataset.class_names)
    scorer.add(*kind.targets(x, y), pred)
    return {"split": name, **scorer.keras_result()}
