"""What every exporter shares: the numbers ``verify()`` gives a .tflite, for any other format.

``check_export`` is an exporter's whole verify check, given how to run the exported model: it picks
the inputs with ``evaluation_data`` (``sample_inputs`` for other uses; ``input_fits`` says whether a
dataset's samples fit the model), compares the outputs with the Keras model's (``compare_outputs``)
and times one call (``time_calls``); ``record_result`` keeps the result in ``verify.json``.
``keras_latency`` measures Keras the same way; ``gzip_size`` is what a download costs, and
``keras_weights`` the Keras model's size that an exported file's is compared with.
"""

import gzip
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from core.data import Dataset, as_arrays
from core.errors import KerastackError
from core.files import StrPath, read_json, write_json
from core.task import task_named

if TYPE_CHECKING:
    from core.deploy.export import ExportContext

BATCH = 256  # samples per call of the exported model and of Keras while they are compared


def keras_latency(run_dir: StrPath, runs: int = 200, warmup: int = 10) -> tuple[float, float]:
    """(p50, p90) ms of ``predict_on_batch`` on one evaluation sample, in this process's backend."""
    from core import backend as backends
    from core.deploy.export import deployed_model, load_dataset
    from core.plugins import get_plugin_host
    from core.runs import load_run

    run = load_run(run_dir)
    backends.use(backends.loaded() or run.backend)
    model = deployed_model(run)
    host = get_plugin_host(list(run.record.get("plugins", [])))
    one = sample_inputs(model, load_dataset(run, host), 1)
    return time_calls(lambda: np.asarray(model.predict_on_batch(one)), runs, warmup)


def keras_weights(run_dir: StrPath) -> dict[str, int]:
    """``{"bytes", "gzip_bytes", "parameters"}`` of the run's deployed Keras model's weights, as
    every exporter sees them (float32, ``deployed_model``): what a .tflite's size compares with.
    ``model.keras`` is not: it also holds the optimizer's state (Adam: two slots per weight, about
    twice the weights), which no deployed file carries."""
    from core.deploy.export import deployed_model
    from core.runs import load_run

    arrays = [np.asarray(w) for w in deployed_model(load_run(run_dir)).get_weights()]
    data = b"".join(np.ascontiguousarray(a).tobytes() for a in arrays)
    return {
        "bytes": len(data),
        "gzip_bytes": len(gzip.compress(data, compresslevel=9, mtime=0)),
        "parameters": int(sum(a.size for a in arrays)),
    }


def time_calls(call: Callable[[], object], runs: int = 200, warmup: int = 10) -> tuple[float, float]:
    """(p50, p90) ms of ``call()``, after ``warmup`` untimed calls."""
    times = np.empty(runs)
    for i in range(-warmup, runs):
        start = time.perf_counter()
        call()
        if i >= 0:
            times[i] = (time.perf_counter() - start) * 1e3
    p50, p90 = np.percentile(times, [50, 90])
    return float(p50), float(p90)


def gzip_size(path: StrPath) -> int:
    """Bytes of the file at ``path`` gzipped at level 9: what downloading it costs."""
    return len(gzip.compress(Path(path).read_bytes(), compresslevel=9, mtime=0))


def single_input_signature(model: Any, exporter: str) -> list[Any]:
    """``[keras.InputSpec]`` of the model's one input with a dynamic batch, for ``model.export``
    (whose default needs a model that has been called; one loaded from a file has not)."""
    import keras

    if len(model.inputs) != 1:
        raise KerastackError(
            f"exporter {exporter!r}: the model has {len(model.inputs)} inputs; "
            "kerastack's exporters and verify take models with one input"
        )
    (tensor,) = model.inputs
    return [keras.InputSpec(shape=(None, *tensor.shape[1:]), dtype=tensor.dtype, name=tensor.name)]


def evaluation_data(
    model: Any, dataset: Dataset, limit: int | None = None
) -> tuple[str, np.ndarray, np.ndarray | None]:
    """``(split name, x, y)`` to compare an exported model with Keras on: the dataset's evaluation
    split when it fits the model's input, else seeded noise of the input's shape (``y`` None)."""
    name, split = dataset.evaluation_split()
    x, y = as_arrays(split, limit=limit)
    if not input_fits(model.input_shape[1:], x.shape[1:]):
        return "random", sample_inputs(model, None, limit or 256), None
    return name, x, y


def sample_inputs(model: Any, dataset: Dataset | None, n: int, seed: int = 0) -> np.ndarray:
    """``n`` inputs for ``model`` (anything with a keras ``input_shape``): from the dataset's evaluation
    split when they fit its input, else seeded standard-normal noise of its input shape (a generator's
    latent vectors). ``dataset`` None: noise."""
    if dataset is not None:
        x, _ = as_arrays(dataset.evaluation_split()[1], limit=n)
        if input_fits(model.input_shape[1:], x.shape[1:]):
            return x[:n]
    return np.random.default_rng(seed).normal(size=(n, *model.input_shape[1:])).astype("float32")


def input_fits(model_shape: Sequence[int | None], data_shape: Sequence[int]) -> bool:
    """Whether samples of ``data_shape`` fit a model input of ``model_shape`` (no batch axis; ``None``
    in the model's shape takes any size)."""
    return len(model_shape) == len(data_shape) and all(m in (None, d) for m, d in zip(model_shape, data_shape))


def compare_outputs(
    keras_out: ArrayLike,
    out: ArrayLike,
    y: ArrayLike | None = None,
    task: str | None = None,
    info: Mapping[str, Any] | None = None,
    class_names: Sequence[str] | None = None,
) -> dict[str, float | int]:
    """What ``verify()`` says of a .tflite, for the outputs of any other runtime on the same inputs:
    ``samples``, ``max_abs_diff``, then the task's scorer (``Task.scorer``) on the fitted targets ``y``
    (``Task.targets``: for reconstruction, the inputs): for classification ``accuracy``,
    ``keras_accuracy`` and ``agreement`` (top-1); ``mae``/``keras_mae`` for regression; ``mse``/
    ``keras_mse`` for reconstruction. ``info``: the dataset's ``Dataset.info``; ``class_names``: the run's."""
    keras_out = np.asarray(keras_out, dtype="float32")
    out = np.asarray(out, dtype="float32").reshape(keras_out.shape)
    result = {"samples": int(len(keras_out)), "max_abs_diff": float(np.max(np.abs(out - keras_out)))}
    if task is not None and y is not None:
        scorer = task_named(task).scorer(info, class_names)
        scorer.add(None, np.asarray(y), keras_out, out)
        result.update(scorer.result())
    return result


def check_export(
    ctx: "ExportContext",
    predict: Callable[[Any], ArrayLike],
    samples: int = 1000,
    *,
    feed: Callable[[np.ndarray], Any] | None = None,
    latency_runs: int = 0,
    **facts: Any,
) -> dict[str, Any]:
    """An exporter's verify check: the exported model against ``ctx.model`` on at most ``samples``
    of the run's evaluation split (0: all; noise where it does not fit: ``evaluation_data``), as
    ``compare_outputs`` says it for the run's task, with ``split`` naming the inputs.

    ``predict(inputs)`` runs the exported model on one batch of at most 256 samples, ``inputs``
    being ``feed(batch)`` (default: the numpy batch itself), e.g. a runtime's tensor or input dict.
    With ``latency_runs``, ``latency_ms_p50`` and ``latency_ms_p90`` of ``predict`` on one sample (fed
    once, see ``time_calls``) are added; then ``facts`` (``runtime="onnxruntime 1.31.1"``). The result
    is what ``record_result`` keeps in ``verify.json``. A SavedModel, for example::

        loaded = tf.saved_model.load(str(path))
        feed = lambda x: tf.constant(x, dtype=ctx.model.inputs[0].dtype)
        result = check_export(ctx, loaded.serve, samples, feed=feed, latency_runs=100, runtime="tensorflow")
        record_result(path, result)
    """
    feed = feed or (lambda batch: batch)
    split, x, y = evaluation_data(ctx.model, ctx.dataset, limit=samples or None)
    task = ctx.run.get("spec", {}).get("task")
    out = np.concatenate([np.asarray(predict(feed(x[i : i + BATCH]))) for i in range(0, len(x), BATCH)])
    keras_out = ctx.model.predict(x, batch_size=BATCH, verbose=0)
    if task is not None and split != "random":
        x, y = task_named(task).targets(x, y)
    else:
        task = None
    info = getattr(ctx.dataset, "info", None)
    names = ctx.run.get("spec", {}).get("class_names")
    result = {"split": split, **compare_outputs(keras_out, out, y, task, info, names)}
    if latency_runs:
        one = feed(x[:1])
        p50, p90 = time_calls(lambda: np.asarray(predict(one)), runs=latency_runs)
        result.update(latency_ms_p50=p50, latency_ms_p90=p90)
    return {**result, **facts}


def record_result(path: StrPath, result: Mapping[str, Any]) -> Path:
    """Keep ``result`` in ``verify.json`` beside ``path``, keyed by its name (as ``verify()`` does);
    return the record's path. A damaged record is replaced."""
    path = Path(path)
    record = path.parent / "verify.json"
    try:
        known = read_json(record, "verify record") if record.exists() else {}
    except KerastackError:
        known = {}  # a damaged record is replaced, not fatal
    known = _by_file_name(known)
    known[path.name] = dict(result, file=str(path))
    return write_json(record, known)


def _by_file_name(known: object) -> dict[str, Any]:
    """A verify.json's results keyed by file name. Older ones hold one result, or a list of them (as
    ``kerastack report`` still reads them); anything else is not a record and is replaced."""
    if isinstance(known, dict) and "file" in known and not isinstance(known["file"], dict):
        known = [known]
    if isinstance(known, list):
        return {Path(r["file"]).name: r for r in known if isinstance(r, dict) and "file" in r}
    return known if isinstance(known, dict) else {}
