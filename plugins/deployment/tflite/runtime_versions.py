"""The oldest LiteRT/TFLite runtime that has each (op, version) of a file, from TensorFlow's own table.

The table is ``tflite::FindMinimumRuntimeVersionForOp`` (tensorflow/lite/tools/versioning/
runtime_version.cc), the one the converter uses to write a file's ``min_runtime_version`` metadata
entry. No Python binding exposes it, so it is called through ``ctypes`` in the TensorFlow library the
converter itself runs from (the export's TensorFlow process). The function returns a ``std::string``;
that is read only where the calling convention is known (Linux x86-64, libstdc++'s C++11 string:
a hidden result pointer, then pointer and size), and each answer must look like a version, else
the table counts as unreachable and only the op versions are recorded.

What the table is worth was measured (bench/compat.md): it is hand-maintained, and a pair it lacks
is skipped by the converter, so its answer is a lower bound, not a guarantee.
"""

import ctypes
import platform
import re
from pathlib import Path

_SYMBOL = "_ZN6tflite30FindMinimumRuntimeVersionForOpB5cxx11ENS_15BuiltinOperatorEi"
_VERSION = re.compile(r"^\d+\.\d+(\.\d+)?$")
_lookup = []  # the ctypes function once found ([None] where it cannot be called)


def runtime_requirements(op_versions, path=None):
    """``{"ops": {"OP vN": oldest runtime or None}, "min_runtime", "unknown", "table",
    "converter_min_runtime_version"}`` for ``op_versions`` (``tflite.ops.op_versions``); None where
    the table cannot be reached here. ``unknown``: pairs the table does not list (it then says
    nothing of them: the minimum is only as good as the table). ``path``: the file, for the
    ``min_runtime_version`` entry the converter wrote."""
    find = _table()
    if find is None:
        return None
    import tensorflow as tf
    from ai_edge_litert import schema_py_generated as schema

    ops, unknown = {}, []
    for name, versions in op_versions.items():
        code = getattr(schema.BuiltinOperator, name, None)
        for version in versions:
            found = find(code, version) if code is not None else None
            ops[f"{name} v{version}"] = found
            if found is None:
                unknown.append(f"{name} v{version}")
    known = [v for v in ops.values() if v]
    if any(not _VERSION.match(v) for v in known):
        return None
    result = {
        "ops": ops,
        "min_runtime": max(known, key=_key) if known else None,
        "unknown": unknown,
        "table": f"tensorflow {tf.__version__}: tflite::FindMinimumRuntimeVersionForOp",
    }
    if path is not None:
        result["converter_min_runtime_version"] = converter_entry(path)
    return result


def converter_entry(path):
    """The ``min_runtime_version`` metadata entry the converter wrote (None where there is none)."""
    from tflite.metadata import read_metadata

    raw = read_metadata(path).get("min_runtime_version")
    text = raw.rstrip(b"\0").decode("ascii", errors="replace") if raw else ""
    return text or None


def _key(version):
    return tuple(int(p) for p in version.split("."))


def _table():
    """``find(builtin code, version) -> str | None`` over TensorFlow's table, or None."""
    if _lookup:
        return _lookup[0]
    _lookup.append(None)
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        return None
    try:
        import tensorflow as tf

        library = ctypes.CDLL(str(Path(tf.__file__).parent / "libtensorflow_cc.so.2"))
        function = getattr(library, _SYMBOL)
    except (ImportError, OSError, AttributeError):
        return None
    function.restype = ctypes.c_void_p
    function.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]

    def find(code, version):
        result = ctypes.create_string_buffer(32)  # a std::string: pointer, size, 16-byte local buffer
        function(ctypes.addressof(result), int(code), int(version))
        size = ctypes.c_size_t.from_buffer(result, 8).value
        if size == 0:
            return None
        if size > 15:  # only short strings sit in the local buffer; a version is never this long
            raise RuntimeError("unexpected answer from the runtime version table")
        return ctypes.string_at(ctypes.c_void_p.from_buffer(result, 0).value, size).decode("ascii", "replace")

    try:
        probe = find(3, 1)  # CONV_2D v1: the table has listed it since TF Lite 1.5
    except RuntimeError:
        return None
    _lookup[0] = find if probe and _VERSION.match(probe) else None
    return _lookup[0]
