"""``export()``: run a deployment plugin on a finished run, in the backend the plugin needs."""

import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import backend as backends
from core.data import Dataset, check_dataset
from core.deploy.folding import fold_output_rescaling
from core.deploy.precision import float32_model, float32_policy, trained_model
from core.engine.datasets import loader_options
from core.errors import KerastackError
from core.files import StrPath
from core.plugins import PluginHost, get_plugin_host
from core.proc.child import call_in_backend
from core.runs import Run, inference_model, load_run
from core.tracking import log_files


@dataclass
class ExportContext:
    """What an exporter gets: the run's deployable model (loaded here; see ``runs.inference_model``;
    computing in float32 even where the run trained in mixed precision: ``precision.float32_model``),
    its dataset, where to write, and the run record."""

    model: Any  # keras.Model
    dataset: Dataset
    out_dir: Path
    run: dict[str, Any]
    run_dir: Path


def export(
    run_dir: StrPath, to: str, options: Mapping[str, Any] | None = None, *, plugins: Iterable[str] | None = None
) -> list[Path]:
    """Export run ``run_dir`` with exporter ``to``; return the paths written.

    ``plugins`` defaults to the ``--plugin`` modules recorded in the run, so a model trained with a
    third-party architecture exports without naming it again.
    """
    run = load_run(run_dir)
    plugins = list(run.record.get("plugins", [])) if plugins is None else list(plugins)
    host = get_plugin_host(plugins)
    entry = host.registry("exporter").get(to)
    options = entry.options(options)
    backend = entry.extra.get("backend") or backends.loaded() or run.backend
    backend = backends.resolve(backend)
    if not backends.can_use(backend):
        kwargs = dict(run_dir=str(run.path), to=to, options=options, plugins=plugins)
        return [Path(p) for p in call_in_backend(backend, _export_json, kwargs)]

    backends.use(backend)
    dataset = load_dataset(run, host)
    out_dir = run.path / "export" / to
    made = [d for d in (out_dir.parent, out_dir) if not d.exists()]
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        # Layers an exporter makes (QAT's quantizers, ...) compute in float32, as the model does.
        with float32_policy():
            ctx = ExportContext(deployed_model(run), dataset, out_dir, run.record, run.path)
            paths = entry.call(ctx, **options)
    except BaseException:
        # A failed export leaves no folder of its own behind (files already there stay).
        for folder in reversed(made):
            shutil.rmtree(folder, ignore_errors=True)
        raise
    if not isinstance(paths, (list, tuple)) or not all(Path(p).exists() for p in paths):
        raise KerastackError(
            f"{entry.owner} from {entry.plugin.label()}: export() must return a list of the paths it "
            f"wrote; got {paths!r}"
        )
    log_files(run.path, run.record, paths, f"export/{to}")  # a tracked run: into its MLflow run
    return [Path(p) for p in paths]


def write_report(run_dir: StrPath, to: str, *, plugins: Iterable[str] | None = None) -> list[Path]:
    """Run exporter ``to``'s ``report(run_dir, out_dir)``, if it registered one; return its paths."""
    run = load_run(run_dir)
    plugins = list(run.record.get("plugins", [])) if plugins is None else list(plugins)
    entry = get_plugin_host(plugins).registry("exporter").get(to)
    report = entry.extra.get("report")
    if report is None:
        return []
    try:
        paths = [Path(p) for p in report(run.path, run.path / "export" / to)]
    except KerastackError:
        raise
    except Exception as exc:
        raise KerastackError(
            f"{entry.owner} from {entry.plugin.label()} failed in its report: {type(exc).__name__}: {exc}"
        ) from exc
    log_files(run.path, run.record, paths, f"export/{to}")
    return paths


def deployed_model(run: Run) -> Any:
    """The keras.Model run ``run`` deploys: its ``inference_model()``, in float32 (a mixed-precision
    model rebuilt with float32 dtype policies, see ``float32_model``), a regression model's target
    scaling folded into its last layer (``fold_output_rescaling``).

    Loaded once per process while the run's ``model.keras`` stays the same file: ``verify()`` and
    ``keras_latency()`` are called again and again on one run (``kerastack run``; the export report:
    every .tflite at every thread count), and a model loaded afresh each time is a fresh predict
    function, traced again (TensorFlow's "triggered tf.function retracing")."""

    def load():
        return fold_output_rescaling(float32_model(inference_model(trained_model(run))))

    if run._model is not None or not run.model_path.is_file():
        return load()  # trained in this process, or not there (run.model says why)
    stat = run.model_path.stat()
    key = (str(run.model_path.resolve()), stat.st_mtime_ns, stat.st_size)
    if key not in _DEPLOYED:
        _DEPLOYED.clear()
        _DEPLOYED[key] = load()
    return _DEPLOYED[key]


_DEPLOYED: dict[tuple[str, int, int], Any] = {}  # at most one: the last run's deployed model


def _export_json(**kwargs: Any) -> list[str]:
    return [str(p) for p in export(**kwargs)]


def load_dataset(run: Run, host: PluginHost | None = None) -> Dataset:
    """The run's dataset, loaded again by its plugin with the options recorded in ``run.json``.

    ``host`` defaults to the plugin host of the ``--plugin`` modules recorded in the run."""
    if host is None:
        host = get_plugin_host(list(run.record.get("plugins", [])))
    rec = run.record["dataset"]
    entry = host.registry("dataset").get(rec["name"])
    batch_size = run.record.get("training", {}).get("batch_size")
    dataset = entry.call(**loader_options(entry.defaults, entry.options(rec.get("options", {})), batch_size))
    check_dataset(dataset, f"{entry.owner} from {entry.plugin.label()}")
    return dataset
