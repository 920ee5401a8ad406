"""``verify()``: run a .tflite on the device-side runtime (``tflite/``) and compare it with Keras."""

from pathlib import Path

import numpy as np

from . import backend as backends
from .data import as_arrays
from .errors import KerastackError
from .exporting import load_dataset
from .plugins import get_plugin_host
from .runs import inference_model, load_run


def verify(tflite_path, run_dir, *, threads=1, latency_runs=200, plugins=None, record=True):
    """Metrics of the .tflite and of the run's Keras model on the run's test split (else validation).

    Returns a dict with ``size_bytes``, ``latency_ms_p50``/``p90`` (single-sample invocations at
    ``threads`` threads), ``max_abs_diff`` and, for classification, ``tflite_accuracy``,
    ``keras_accuracy`` and ``agreement`` (top-1); for regression ``tflite_mae``/``keras_mae``; for
    reconstruction ``tflite_mse``/``keras_mse``. A deployed model that takes other inputs than the
    data (a GAN's generator) is compared on seeded random inputs. With ``record`` the result is
    also kept in ``verify.json`` beside the file (keyed by file name), which ``kerastack report`` reads.
    """
    from tflite.runner import TFLiteModel

    tflite_path = Path(tflite_path)
    run = load_run(run_dir)
    try:
        lite = TFLiteModel(tflite_path, num_threads=threads)
    except (OSError, ValueError) as exc:
        raise KerastackError(f"{tflite_path}: {exc}") from None
    plugins = list(run.record.get("plugins", [])) if plugins is None else list(plugins)
    host = get_plugin_host(plugins)
    backends.use(backends.loaded() or run.backend)
    keras_model = inference_model(run.model)
    split_name, split = load_dataset(run, host).evaluation_split()
    x, y = as_arrays(split)
    task = run.record.get("spec", {}).get("task")
    if not _fits(keras_model.input_shape[1:], x.shape[1:]):
        # The deployed part takes other inputs than the data (a generator takes noise).
        split_name, y = "random", None
        x = sample_inputs(keras_model, None, 256)
    try:
        lite_out = lite.predict(x)
    except ValueError as exc:
        raise KerastackError(f"{exc} (the {split_name} split of run {run.path})") from None
    keras_out = np.asarray(keras_model.predict(x, batch_size=256, verbose=0), dtype="float32")
    bench = lite.benchmark(x[:1], runs=latency_runs)
    result = {
        "file": str(tflite_path),
        "split": split_name,
        "samples": int(len(x)),
        "size_bytes": lite.size_bytes,
        "max_abs_diff": float(np.max(np.abs(lite_out.reshape(keras_out.shape) - keras_out))),
        "latency_ms_p50": float(bench["p50_ms"]),
        "latency_ms_p90": float(bench["p90_ms"]),
        "threads": threads,
    }
    if task == "classification" and y is not None:
        lite_top, keras_top = lite_out.argmax(-1), keras_out.argmax(-1)
        result.update(
            tflite_accuracy=float(np.mean(lite_top == y)),
            keras_accuracy=float(np.mean(keras_top == y)),
            agreement=float(np.mean(lite_top == keras_top)),
        )
    elif task == "regression" and y is not None:
        y = np.asarray(y, dtype="float32").reshape(len(y), -1)
        result.update(
            tflite_mae=float(np.mean(np.abs(lite_out.reshape(y.shape) - y))),
            keras_mae=float(np.mean(np.abs(keras_out.reshape(y.shape) - y))),
        )
    elif task == "reconstruction" and split_name != "random":
        target = np.asarray(x, dtype="float32").reshape(keras_out.shape)
        result.update(
            tflite_mse=float(np.mean((lite_out.reshape(keras_out.shape) - target) ** 2)),
            keras_mse=float(np.mean((keras_out - target) ** 2)),
        )
    if record:
        _record(tflite_path, result)
    return result


def _record(tflite_path, result):
    from .runs import read_json, write_json

    path = tflite_path.parent / "verify.json"
    try:
        known = read_json(path, "verify record") if path.exists() else {}
    except KerastackError:
        known = {}  # a damaged record is replaced, not fatal
    known[tflite_path.name] = result
    write_json(path, known)


def sample_inputs(model, dataset, n, seed=0):
    """``n`` inputs for ``model``: from the dataset's evaluation split when they fit its input,
    else seeded standard-normal noise of its input shape (a generator's latent vectors)."""
    if dataset is not None:
        x, _ = as_arrays(dataset.evaluation_split()[1], limit=n)
        if _fits(model.input_shape[1:], x.shape[1:]):
            return x[:n]
    return np.random.default_rng(seed).normal(size=(n, *model.input_shape[1:])).astype("float32")


def _fits(model_shape, data_shape):
    return len(model_shape) == len(data_shape) and all(m in (None, d) for m, d in zip(model_shape, data_shape))
