"""A .keras file's optimizer state, set on a model whose trainable layers were set again after
loading (see ``core.runs.trainable``): checked variable by variable, never dropped in silence."""

import io
import json
import zipfile

from core.errors import KerastackError

WEIGHTS_FILE = "model.weights.h5"  # in a .keras archive; the optimizer's variables are under optimizer/vars


def restore_optimizer(model, path):
    """Compile ``model`` as the .keras file at ``path`` records (``compile_config``), build its
    optimizer over the model's trainable variables, and set every optimizer variable (iterations,
    moments, a loss scale) to the value saved in ``model.weights.h5`` under ``optimizer/vars``, by
    position, as Keras saves them. A count or shape that differs is a ``KerastackError`` naming the
    file: the model's trainable variables are not those the optimizer state was saved for."""
    from keras.src.saving.saving_lib import H5IOStore

    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
            weights = archive.read(WEIGHTS_FILE)
    except (KeyError, ValueError, OSError, zipfile.BadZipFile) as exc:
        raise KerastackError(f"{path}: cannot read its optimizer state: {type(exc).__name__}: {exc}") from exc
    if not config.get("compile_config"):
        raise KerastackError(f"{path}: holds no compiled state (saved before compile), so no optimizer state")
    model.compile_from_config(config["compile_config"])
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        raise KerastackError(f"{path}: the model does not compile from its saved config (a custom compile())")
    if not optimizer.built:
        optimizer.build(model.trainable_variables)
    store = H5IOStore(io.BytesIO(weights), mode="r")
    try:
        entry = store.get("optimizer")
        saved = [entry[str(i)] for i in range(len(entry))]
    finally:
        store.close()
    variables = optimizer.variables
    if len(saved) != len(variables):
        raise KerastackError(
            f"{path}: its optimizer state does not fit the model: {len(saved)} optimizer variables saved, "
            f"{len(variables)} for the model's {len(model.trainable_variables)} trainable variables"
        )
    for i, (variable, value) in enumerate(zip(variables, saved)):
        if tuple(variable.shape) != tuple(value.shape):
            raise KerastackError(
                f"{path}: its optimizer state does not fit the model: optimizer variable {i} "
                f"({variable.path}) has shape {tuple(variable.shape)}, saved {tuple(value.shape)}"
            )
    for variable, value in zip(variables, saved):
        variable.assign(value)
