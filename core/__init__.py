"""kerastack's core: plugins, backends, runs. Importing it never imports keras, TensorFlow, JAX or torch.

Everything a plugin may use is a name in ``__all__``, imported from ``core`` itself; the modules
behind them (``core.files``, ``core.deploy.compare``, ...) are not API and may move. A plugin needs
only ``hookimpl`` (and ``Dataset`` for dataset plugins)::

    from core import hookimpl

Notebooks and scripts use the same operations as the command line::

    from core import train, export, verify, load_run
"""

from core.backend import BACKENDS
from core.backend import loaded as loaded_backend
from core.backend import use as use_backend
from core.child import call_in_backend
from core.data import Dataset, DataSpec, as_arrays, check_dataset, is_pair, spec_of, targets_for
from core.deploy.compare import (
    compare_outputs,
    evaluation_data,
    gzip_size,
    input_fits,
    keras_latency,
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
from core.progress import progress_bar
from core.runs import Run, import_model_modules, inference_model, load_model, load_run
from core.runs.plots import new_figure, save_figure
from core.testing import Case, check_architecture, check_architectures
from core.versions import versions as package_versions

__all__ = [
    # writing a plugin
    "hookimpl",
    "Dataset",
    "DataSpec",
    "ExportContext",
    "KerastackError",
    "UsageError",
    "did_you_mean",
    "choices_text",
    "one_line",
    # files written whole or not at all
    "atomic_path",
    "read_json",
    "write_bytes",
    "write_csv",
    "write_json",
    "write_text",
    "format_size",
    # data splits
    "as_arrays",
    "is_pair",
    "targets_for",
    # backends and child processes
    "BACKENDS",
    "loaded_backend",
    "use_backend",
    "call_in_backend",
    # runs and models
    "Run",
    "load_run",
    "load_model",
    "import_model_modules",
    "inference_model",
    "float32_model",
    "fold_output_rescaling",
    "load_dataset",
    # what exporters share
    "compare_outputs",
    "evaluation_data",
    "record_result",
    "sample_inputs",
    "input_fits",
    "single_input_signature",
    "time_calls",
    "keras_latency",
    "gzip_size",
    "format_layer_errors",
    "new_figure",
    "save_figure",
    "package_versions",
    "progress_bar",
    # operations (the command line's, for scripts and notebooks)
    "train",
    "export",
    "verify",
    "PluginHost",
    "get_plugin_host",
    # testing helpers for plugin authors
    "Case",
    "check_architecture",
    "check_architectures",
    "check_dataset",
    "spec_of",
]
