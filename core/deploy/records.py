"""``verify.json``: the results of checking exported files against their run, one entry per file.

Written by ``verify()`` for a .tflite and by exporters to other formats through ``record_result``;
read by ``kerastack report``.
"""

from pathlib import Path

from core.errors import KerastackError
from core.files import read_json, write_json


def record_result(path, result):
    """Keep ``result`` in ``verify.json`` beside ``path``, keyed by its name (as ``verify()`` does)."""
    path = Path(path)
    record = path.parent / "verify.json"
    try:
        known = read_json(record, "verify record") if record.exists() else {}
    except KerastackError:
        known = {}  # a damaged record is replaced, not fatal
    known[path.name] = dict(result, file=str(path))
    return write_json(record, known)
