"""Choosing the Keras backend. Keras reads ``KERAS_BACKEND`` once, at import, so one process has
one backend; work that needs another runs in a child process (``core.proc.child``)."""

import contextlib
import importlib.util
import os
import sys
from collections.abc import Iterator
from types import ModuleType

from core.errors import KerastackError, UsageError, choices_text

BACKENDS = ("tensorflow", "jax", "torch")
"""The Keras backends kerastack trains and exports with, in its order of preference."""
_PACKAGES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}


def resolve(name: str | None = None) -> str:
    """The backend to use: ``name``, else ``KERAS_BACKEND``, else tensorflow; checked and installed."""
    name = name or os.environ.get("KERAS_BACKEND") or "tensorflow"
    if name not in BACKENDS:
        raise UsageError(f"unknown backend {name!r}; valid: {choices_text(BACKENDS)}")
    if importlib.util.find_spec(_PACKAGES[name]) is None:
        raise UsageError(f"backend {name!r} is not installed; pip install {_PACKAGES[name]}")
    return name


def loaded() -> str | None:
    """The backend of the keras already imported in this process, or None."""
    keras = sys.modules.get("keras")
    if keras is None or not hasattr(keras, "backend"):
        return None
    return keras.backend.backend()


def can_use(name: str) -> bool:
    """Whether this process can run ``name`` (keras not imported yet, or imported with it)."""
    current = loaded()
    return current is None or current == name


def select(name: str | None) -> str:
    """Make ``name`` the backend keras will be imported with, without importing it yet."""
    name = resolve(name)
    if not can_use(name):
        raise KerastackError(f"this process already runs keras with backend {loaded()!r}; {name!r} needs a new process")
    os.environ["KERAS_BACKEND"] = name
    return name


def use(name: str | None) -> ModuleType:
    """Import keras under ``name`` (None: ``KERAS_BACKEND``, else tensorflow) in this process; return
    the keras module."""
    name = resolve(name)
    current = loaded()
    if current is not None and current != name:
        raise KerastackError(f"this process already runs keras with backend {current!r}; {name!r} needs a new process")
    os.environ["KERAS_BACKEND"] = name
    import keras

    if name != "tensorflow":
        _tensorflow_when_used()
    return keras


# The Keras modules that ask whether TensorFlow is installed only to test an object against its
# types (saving) or to seed it (set_random_seed).
_ASKERS = ("keras.src.saving.", "keras.src.legacy.saving.", "keras.src.utils.rng_utils")


def _tensorflow_when_used() -> None:
    """Under JAX or torch, keep Keras from importing TensorFlow where nothing uses it.

    Keras asks ``tensorflow.available`` (which imports it) before every isinstance test against a
    TensorFlow type when it saves a model, and in ``set_random_seed``: each JAX or torch run
    imported all of TensorFlow, 4 s of its start here. For those callers the answer becomes "is it
    imported": nothing is a TensorFlow object before TensorFlow is imported, and a dataset plugin
    that reads through ``tf.data`` has imported it before the run is seeded. Every other caller (the
    lookup and hashing layers, which run on TensorFlow) gets Keras's own answer."""
    from keras.src.utils import module_utils

    lazy = module_utils.tensorflow
    if type(lazy) is not module_utils.LazyModule:
        return  # done already, or Keras changed: its own behaviour

    class WhenUsed(module_utils.LazyModule):
        @property
        def available(self):
            asker = sys._getframe(1).f_globals.get("__name__", "")
            if asker.startswith(_ASKERS) and "tensorflow" not in sys.modules:
                return False
            return module_utils.LazyModule.available.fget(self)

    lazy.__class__ = WhenUsed


@contextlib.contextmanager
def dtype_policy(name: str) -> Iterator[None]:
    """Keras's global dtype policy ``name`` inside the block, the previous one after it: a model
    built inside keeps ``name`` in its layers, the process does not (``--precision`` is the run's)."""
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
