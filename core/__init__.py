"""kerastack's core: plugins, backends, runs. Importing it never imports keras, TensorFlow, JAX or torch.

A plugin needs only ``hookimpl`` (and ``Dataset`` for dataset plugins)::

    from core import hookimpl

Notebooks and scripts use the same operations as the command line::

    from core import train, export, verify, load_run
"""

from core.data import Dataset, DataSpec
from core.deploy.export import export
from core.deploy.verify import verify
from core.engine.training import train
from core.errors import KerastackError, UsageError
from core.hookspecs import hookimpl
from core.plugins import PluginHost, get_plugin_host
from core.runs import Run, load_run

__all__ = [
    "DataSpec",
    "Dataset",
    "KerastackError",
    "PluginHost",
    "Run",
    "UsageError",
    "export",
    "get_plugin_host",
    "hookimpl",
    "load_run",
    "train",
    "verify",
]
