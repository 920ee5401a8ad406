"""Device-side runner for exported .tflite models: numpy + ai_edge_litert only.

Copy this folder onto the device, `pip install -r tflite/requirements.txt`, then
`python -m tflite model_int8.tflite --input x.npy` or use `TFLiteModel` from Python.
`ai_edge_litert` is imported only when a model is opened. The names below are imported on first use
(PEP 562), so that `tflite.text` (the tokenizing rule, standard library only) is cheap to import for
the training side too.
"""

from importlib import import_module

__all__ = ["TFLiteModel", "latency_percentiles", "load_labels", "load_metadata", "range_warning"]


def __getattr__(name):
    """``tflite.NAME`` for a name of ``__all__``: imported from ``tflite.runner`` on first use."""
    if name not in __all__:
        raise AttributeError(f"module 'tflite' has no attribute {name!r}")
    value = getattr(import_module(".runner", __name__), name)
    globals()[name] = value
    return value
