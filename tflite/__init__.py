"""Device-side runner for exported .tflite models: numpy + ai_edge_litert only.

Copy this folder onto the device, `pip install -r tflite/requirements.txt`, then
`python -m tflite model_int8.tflite --input x.npy` or use `TFLiteModel` from Python.
`ai_edge_litert` is imported only when a model is opened.
"""

from .runner import TFLiteModel, latency_percentiles, load_labels, load_metadata, range_warning

__all__ = ["TFLiteModel", "latency_percentiles", "load_labels", "load_metadata", "range_warning"]
