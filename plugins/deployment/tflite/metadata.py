"""Put ``model.json``'s description of a .tflite inside the file: one file is then a whole deployment.

The entry is named ``kerastack`` in the flatbuffer's ``Model.metadata`` list and holds UTF-8 JSON: the
top-level keys of model.json (task, class names, input shape, vocabulary, source run, ...) and
``files`` with this file's entry only. ``tflite.runner.load_metadata`` reads it when no model.json
lies beside the model. The mechanics (rewriting the flatbuffer, reading it back without TensorFlow)
are in ``tflite/metadata.py``, which ships to devices.
"""

import gzip
import json
from pathlib import Path

from core import KerastackError, read_json, write_json
from tflite.metadata import EMBEDDED_KEY as KEY

MODEL_JSON = "model.json"
SIZES = {"size_bytes", "gzip_bytes"}  # of the file itself: they change when metadata goes in
# Export-time diagnostics that stay in model.json: a device needs none of them, and a small model's
# file would grow by a tenth (the per-layer errors of a 19 k-parameter int8 cnn: ~2 KiB).
DIAGNOSTICS = {"layer_errors", "layer_errors_error"}
MIXED_SUMMARY = ("keep_float", "float_layers", "int8_ops", "int8_weights")  # of ``mixed``: what a device may show


def embed_run_metadata(tflite_path, meta=None):
    """Embed this file's part of ``meta`` (default: the model.json beside it) into ``tflite_path``.

    The file is replaced atomically. Its entry's sizes (``size_bytes``, ``gzip_bytes``) are left out
    of the embedded copy (a file cannot hold its own final size) and, when model.json lies beside the
    file, updated there to the new file's. Returns the embedded dict.
    """
    from tflite.metadata import embed_metadata

    path = Path(tflite_path)
    meta_path = path.parent / MODEL_JSON
    if meta is None:
        meta = read_json(meta_path, "metadata file")
    embedded = file_metadata(meta, path.name)
    try:
        embed_metadata(path, path, KEY, json.dumps(embedded, sort_keys=False).encode("utf-8"))
    except (OSError, ValueError) as exc:
        raise KerastackError(f"{path}: cannot embed metadata: {exc}") from None
    if meta_path.exists():
        on_disk = read_json(meta_path, "metadata file")
        entry = (on_disk.get("files") or {}).get(path.name)
        if isinstance(entry, dict) and SIZES & set(entry):
            data = path.read_bytes()
            sizes = {"size_bytes": len(data), "gzip_bytes": len(gzip.compress(data, 9, mtime=0))}
            entry.update({k: v for k, v in sizes.items() if k in entry})
            write_json(meta_path, on_disk)
    return embedded


def file_metadata(meta, name):
    """model.json narrowed to one file: every top-level key, and ``files`` with ``name``'s entry only
    (less its sizes and the export's diagnostics: ``DIAGNOSTICS``, ``mixed`` cut to ``MIXED_SUMMARY``)."""
    out = {k: v for k, v in meta.items() if k != "files"}
    entry = (meta.get("files") or {}).get(name)
    if isinstance(entry, dict):
        kept = {k: v for k, v in entry.items() if k not in SIZES | DIAGNOSTICS}
        if isinstance(kept.get("mixed"), dict):
            kept["mixed"] = {k: kept["mixed"][k] for k in MIXED_SUMMARY if k in kept["mixed"]}
        out["files"] = {name: kept}
    return out


def read_run_metadata(tflite_path):
    """The ``kerastack`` entry of ``tflite_path`` as a dict, or None when it has none."""
    from tflite.metadata import read_metadata

    try:
        data = read_metadata(tflite_path).get(KEY)
        return None if data is None else json.loads(data.decode("utf-8"))
    except (OSError, ValueError) as exc:
        raise KerastackError(f"{tflite_path}: cannot read embedded metadata: {exc}") from None
