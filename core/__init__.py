"""kerastack's core: plugins, backends, runs. Importing it never imports keras, TensorFlow, JAX or torch.

A plugin needs only ``hookimpl`` (and ``Dataset`` for dataset plugins)::

    from core import hookimpl

Notebooks and scripts use the same operations as the command line::

    from core import train, export, verify, load_run
"""

from .data import Dataset, DataSpec
from .errors import KerastackError, UsageError
from .exporting import export
from .hookspecs import hookimpl
from .plugins import PluginHost, get_plugin_host
from .runs import Run, load_run
from .training import train
from .verifying import verify

__all__ = [
    "DataSpec", "Dataset", "KerastackError", "PluginHost", "Run", "UsageError", "export",
    "get_plugin_host", "hookimpl", "load_run", "train", "verify",
]
