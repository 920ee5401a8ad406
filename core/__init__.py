"""kerastack's core: plugins, backends, runs. Importing it never imports keras, TensorFlow, JAX or torch.

Everything a plugin may use is a name in ``__all__``, imported from ``core`` itself; the modules
behind them (``core.files``, ``core.deploy.compare``, ...) are not API and may move. A plugin needs
only ``hookimpl`` (and ``Dataset`` for dataset plugins)::

    from core import hookimpl

Notebooks and scripts use the same operations as the command line::

    from core import train, export, verify, load_run

Each name is imported on first use (PEP 562: the module's ``__getattr__`` reads ``_ORIGINS``), so
``import core`` loads no wing (engine, deploy, runs, ...) and a plugin that uses ``hookimpl`` loads
the kernel modules it names, not the training stack. Type checkers read the same names from the
``TYPE_CHECKING`` imports below, which ``tests/core/test_kernel.py`` keeps equal to ``_ORIGINS``.
"""

from importlib import import_module
from typing import TYPE_CHECKING

# Public name → "module:name there", in the order of ``__all__``.
_ORIGINS = {
    # writing a plugin
    "hookimpl": "core.hookspecs:hookimpl",
    "Dataset": "core.data:Dataset",
    "DataSpec": "core.data:DataSpec",
    "Task": "core.task:Task",
    "Scorer": "core.task:Scorer",
    "task_named": "core.task:task_named",
    "ExportContext": "core.deploy.export:ExportContext",
    "KerastackError": "core.errors:KerastackError",
    "UsageError": "core.errors:UsageError",
    "did_you_mean": "core.errors:did_you_mean",
    "choices_text": "core.errors:choices_text",
    "one_line": "core.errors:one_line",
    # files written whole or not at all
    "atomic_path": "core.files:atomic_path",
    "read_json": "core.files:read_json",
    "write_bytes": "core.files:write_bytes",
    "write_csv": "core.files:write_csv",
    "write_json": "core.files:write_json",
    "write_text": "core.files:write_text",
    "format_size": "core.files:format_size",
    # data splits
    "as_arrays": "core.data:as_arrays",
    "is_pair": "core.data:is_pair",
    "targets_for": "core.data:targets_for",
    # backends and child processes
    "BACKENDS": "core.backend:BACKENDS",
    "loaded_backend": "core.backend:loaded",
    "use_backend": "core.backend:use",
    "call_in_backend": "core.proc.child:call_in_backend",
    # runs and models
    "Run": "core.runs:Run",
    "load_run": "core.runs:load_run",
    "load_model": "core.runs:load_model",
    "import_model_modules": "core.runs:import_model_modules",
    "inference_model": "core.runs:inference_model",
    "float32_model": "core.deploy.precision:float32_model",
    "fold_output_rescaling": "core.deploy.folding:fold_output_rescaling",
    "load_dataset": "core.deploy.export:load_dataset",
    # what exporters share
    "check_export": "core.deploy.compare:check_export",
    "compare_outputs": "core.deploy.compare:compare_outputs",
    "evaluation_data": "core.deploy.compare:evaluation_data",
    "record_result": "core.deploy.compare:record_result",
    "sample_inputs": "core.deploy.compare:sample_inputs",
    "input_fits": "core.deploy.compare:input_fits",
    "single_input_signature": "core.deploy.compare:single_input_signature",
    "time_calls": "core.deploy.compare:time_calls",
    "keras_latency": "core.deploy.compare:keras_latency",
    "keras_weights": "core.deploy.compare:keras_weights",
    "gzip_size": "core.deploy.compare:gzip_size",
    "format_layer_errors": "core.deploy.layer_table:format_layer_errors",
    "new_figure": "core.runs.plots:new_figure",
    "save_figure": "core.runs.plots:save_figure",
    "package_versions": "core.runs.versions:versions",
    "progress_bar": "core.proc.progress:progress_bar",
    # operations (the command line's, for scripts and notebooks)
    "train": "core.engine.training:train",
    "export": "core.deploy.export:export",
    "verify": "core.deploy.verify:verify",
    "PluginHost": "core.plugins:PluginHost",
    "get_plugin_host": "core.plugins:get_plugin_host",
    # testing helpers for plugin authors
    "Case": "core.testing:Case",
    "check_architecture": "core.testing:check_architecture",
    "check_architectures": "core.testing:check_architectures",
    "check_dataset": "core.data:check_dataset",
    "spec_of": "core.data:spec_of",
}

__all__ = list(_ORIGINS)


def __getattr__(name):
    """``core.NAME`` for a name of ``__all__``: imported from its module on first use, then kept."""
    origin = _ORIGINS.get(name)
    if origin is None:
        raise AttributeError(f"module 'core' has no attribute {name!r}")
    module, attr = origin.split(":")
    value = getattr(import_module(module), attr)
    globals()[name] = value
    return value


def __dir__():
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:
    from core.backend import BACKENDS
    from core.backend import loaded as loaded_backend
    from core.backend import use as use_backend
    from core.data import Dataset, DataSpec, as_arrays, check_dataset, is_pair, spec_of, targets_for
    from core.deploy.compare import (
        check_export,
        compare_outputs,
        evaluation_data,
        gzip_size,
        input_fits,
        keras_latency,
        keras_weights,
        record_result,
        sample_inputs,
        single_input_signature,
        time_calls,
    )
    from core.deploy.export import ExportContext, export, load_dataset
    from core.deploy.folding import fold_output_rescaling
    from core.deploy.layer_table import format_layer_errors
    from core.deploy.precision import float32_model
    from core.deploy.verify import verify
    from core.engine.training import train
    from core.errors import KerastackError, UsageError, choices_text, did_you_mean, one_line
    from core.files import atomic_path, format_size, read_json, write_bytes, write_csv, write_json, write_text
    from core.hookspecs import hookimpl
    from core.plugins import PluginHost, get_plugin_host
    from core.proc.child import call_in_backend
    from core.proc.progress import progress_bar
    from core.runs import Run, import_model_modules, inference_model, load_model, load_run
    from core.runs.plots import new_figure, save_figure
    from core.runs.versions import versions as package_versions
    from core.task import Scorer, Task, task_named
    from core.testing import Case, check_architecture, check_architectures
