"""Each backend's way to train, one module per backend: ``tensorflow.py``, ``jax.py``, ``torch.py``.

Each defines ``BACKEND``, a :class:`core.engine.backends.base.Backend` that owns what differs between
backends: this process's devices (``--distribute``), joining the other processes and its timeouts,
how data is fed and sharded, the gradient and log reductions Keras's ``fit`` leaves out, the options
the backend refuses, and its Keras-version patches. The engine calls that interface and never
branches on a backend's name (docs/architecture.md, "Adding a backend"). Nothing here imports a
framework at module level.
"""

import functools
import importlib

from core.backend import BACKENDS


@functools.cache
def for_backend(name):
    """The :class:`~core.engine.backends.base.Backend` of ``name`` (one of ``core.backend.BACKENDS``),
    from this package's module of that name."""
    if name not in BACKENDS:
        raise ValueError(f"backend {name!r}: valid: {', '.join(BACKENDS)}")
    return importlib.import_module(f"{__name__}.{name}").BACKEND
