"""Named metadata inside a .tflite file: the flatbuffer's own ``Model.metadata`` list.

The TFLite schema keeps metadata as ``Model.metadata: [Metadata {name: string, buffer: uint}]``, each
entry naming one of ``Model.buffers``. The converter already writes two (``min_runtime_version``,
``CONVERSION_METADATA``); kerastack adds ``kerastack``, its model.json as UTF-8 JSON, so that one
.tflite file is a complete deployment.

``read_metadata`` walks the flatbuffer by hand with the standard library only: a device reads the
metadata without TensorFlow and without parsing the graph. ``embed_metadata`` rewrites the model with
the schema classes and the ``flatbuffers`` package that ``ai-edge-litert`` ships and depends on,
imported when it is called.
"""

from __future__ import annotations

import io
import mmap
import os
import struct
import tempfile
import zipfile
from pathlib import Path

import numpy as np

__all__ = ["EMBEDDED_KEY", "associated_files", "embed_metadata", "read_metadata"]

EMBEDDED_KEY = "kerastack"  # kerastack's entry: model.json's description of this file, as JSON
FILE_IDENTIFIER = b"TFL3"
# Field indexes in the TFLite schema (tensorflow/compiler/mlir/lite/schema/schema.fbs).
_MODEL_BUFFERS, _MODEL_METADATA = 4, 6
_METADATA_NAME, _METADATA_BUFFER = 0, 1
_BUFFER_DATA, _BUFFER_OFFSET, _BUFFER_SIZE = 0, 1, 2
_BUFFER_ALIGNMENT = 16  # the schema's `force_align: 16` on Buffer.data


def read_metadata(path: str | Path) -> dict[str, bytes]:
    """Every ``Model.metadata`` entry of the .tflite at ``path``: ``{name: the bytes of its buffer}``.

    Raises ``ValueError`` (naming the file) when the file is not a well-formed TFLite flatbuffer.
    """
    path = Path(path)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size < 8:
            raise ValueError(f"{path}: not a .tflite flatbuffer ({size} bytes)")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            return _FlatBuffer(buf, path).metadata()


class _FlatBuffer:
    """Just enough of the flatbuffer format to follow Model → metadata → buffers, with bounds checks.

    A table starts with an int32 offset back to its vtable; the vtable lists uint16 field offsets
    (0: field absent). Offsets to tables, vectors and strings are uint32s relative to where they sit.
    """

    def __init__(self, buf, path):
        self.buf, self.path = buf, path

    def metadata(self) -> dict[str, bytes]:
        model = self.deref(0)
        buffers = self.vector(model, _MODEL_BUFFERS)
        out = {}
        for entry in self.tables(self.vector(model, _MODEL_METADATA)):
            name_at = self.field(entry, _METADATA_NAME)
            if name_at is None:
                continue
            index_at = self.field(entry, _METADATA_BUFFER)
            index = 0 if index_at is None else self.scalar("<I", index_at)
            if buffers is None or index >= buffers[1]:
                raise self.error(f"metadata entry names buffer {index}, which does not exist")
            name = self.bytes(self.deref(name_at)).decode("utf-8", errors="replace")
            out[name] = self.buffer_data(self.deref(buffers[0] + 4 * index))
        return out

    def buffer_data(self, table: int) -> bytes:
        offset_at, size_at = self.field(table, _BUFFER_OFFSET), self.field(table, _BUFFER_SIZE)
        offset = self.scalar("<Q", offset_at) if offset_at is not None else 0
        if offset > 1:  # a model over 2 GB keeps buffers after the flatbuffer, at file offsets
            size = self.scalar("<Q", size_at) if size_at is not None else 0
            return bytes(self.slice(offset, size))
        data_at = self.field(table, _BUFFER_DATA)
        return b"" if data_at is None else self.bytes(self.deref(data_at))

    # -- the format --------------------------------------------------------------------------------
    def field(self, table: int, index: int) -> int | None:
        """Where field ``index`` of the table at ``table`` sits, or None when it is absent."""
        vtable = table - self.scalar("<i", table)
        vtable_size = self.scalar("<H", vtable)
        slot = 4 + 2 * index
        if slot + 2 > vtable_size:
            return None
        offset = self.scalar("<H", vtable + slot)
        return table + offset if offset else None

    def vector(self, table: int, index: int) -> tuple[int, int] | None:
        """(position of the first element, length) of a vector field, or None when absent."""
        at = self.field(table, index)
        if at is None:
            return None
        start = self.deref(at)
        return start + 4, self.scalar("<I", start)

    def tables(self, vector: tuple[int, int] | None):
        if vector is None:
            return
        first, length = vector
        for i in range(length):
            yield self.deref(first + 4 * i)

    def deref(self, at: int) -> int:
        return at + self.scalar("<I", at)

    def bytes(self, at: int) -> bytes:
        """A string or [ubyte] vector at ``at``: its uint32 length, then the bytes."""
        return bytes(self.slice(at + 4, self.scalar("<I", at)))

    def scalar(self, fmt: str, at: int) -> int:
        return struct.unpack(fmt, self.slice(at, struct.calcsize(fmt)))[0]

    def slice(self, at: int, size: int):
        if at < 0 or size < 0 or at + size > len(self.buf):
            raise self.error(f"offset {at}+{size} lies outside the file ({len(self.buf)} bytes)")
        return self.buf[at : at + size]

    def error(self, why: str) -> ValueError:
        return ValueError(f"{self.path}: not a well-formed .tflite flatbuffer ({why})")


def embed_metadata(
    path_in: str | Path, path_out: str | Path, name: str, data: bytes, files: dict[str, bytes] | None = None
) -> Path:
    """Write the model at ``path_in`` to ``path_out`` with metadata entry ``name`` holding ``data``.

    An entry of the same name is replaced; every other part of the model is kept (the graph is
    rewritten with the TFLite schema's object API, as TensorFlow's own ``flatbuffer_utils`` does),
    and so is a zip archive of associated files appended after the flatbuffer (where the standard
    ``TFLITE_METADATA`` entry's readers find ``labels.txt``); ``files`` ({name: bytes}) are added to
    that archive, replacing those of the same name. ``path_out`` may be ``path_in``; it is replaced
    atomically. Returns ``Path(path_out)``.
    """
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    path_in, path_out = Path(path_in), Path(path_out)
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError(f"embed_metadata: data must be bytes, received {type(data).__name__}")
    raw = path_in.read_bytes()
    read_metadata(path_in)  # a clear error for a file that is not a model, before the schema code
    try:
        model = schema.ModelT.InitFromPackedBuf(bytearray(raw), 0)
    except Exception as e:  # the generated reader raises struct.error, IndexError, ... on damage
        raise ValueError(f"{path_in}: not a well-formed .tflite flatbuffer ({type(e).__name__}: {e})") from e
    buffers = model.buffers or [schema.BufferT()]  # buffer 0 is the empty sentinel by convention
    if any(b.offset > 1 for b in buffers):
        raise ValueError(
            f"{path_in}: keeps its weights outside the flatbuffer (over 2 GB); "
            "embedding metadata is not supported for such models"
        )
    payload = np.frombuffer(bytes(data), dtype=np.uint8)
    entries = list(model.metadata or [])
    old = [m.buffer for m in entries if _text(m.name) == name]
    entries = [m for m in entries if _text(m.name) != name]
    others = _buffers_in_use(model, entries)
    index = next((i for i in old if 0 < i < len(buffers) and i not in others), None)
    if index is None:  # nothing of ours to overwrite: a new buffer
        buffers.append(None)
        index = len(buffers) - 1
    buffers[index] = schema.BufferT(data=payload)
    entries.append(schema.MetadataT(name=name, buffer=index))
    model.buffers = [_AlignedBuffer(b, schema) for b in buffers]
    model.metadata = entries

    builder = flatbuffers.Builder(len(raw) + len(data) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=FILE_IDENTIFIER)
    _write_atomically(path_out, _with_files(builder.Output(), {**associated_files(raw), **(files or {})}))
    return path_out


def associated_files(model: bytes | str | Path) -> dict[str, bytes]:
    """``{name: bytes}`` of the zip archive appended after a .tflite's flatbuffer (the standard
    metadata's associated files: ``labels.txt``, ``vocab.txt``); {} where there is none."""
    raw = Path(model).read_bytes() if isinstance(model, (str, Path)) else bytes(model)
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            return {name: archive.read(name) for name in archive.namelist()}
    except (zipfile.BadZipFile, OSError, ValueError):
        return {}


def _with_files(flatbuffer: bytes, files: dict[str, bytes]) -> bytes:
    """``flatbuffer`` with ``files`` appended as a zip archive (LiteRT ignores bytes after the model)."""
    if not files:
        return bytes(flatbuffer)
    out = io.BytesIO(bytes(flatbuffer))
    with zipfile.ZipFile(out, "a", compression=zipfile.ZIP_STORED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return out.getvalue()


def _buffers_in_use(model, entries) -> set[int]:
    """Buffer indexes that tensors, ``metadata_buffer`` or the ``entries`` kept refer to."""
    listed = [] if model.metadataBuffer is None else model.metadataBuffer  # a list or a numpy array
    used = {m.buffer for m in entries} | {int(i) for i in listed}
    for subgraph in model.subgraphs or ():
        used.update(t.buffer for t in subgraph.tensors or ())
    return used


def _text(value) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, (bytes, bytearray)) else str(value)


class _AlignedBuffer:
    """A BufferT that packs its data on a 16-byte boundary, as the schema asks (``force_align: 16``);
    the generated Python ``BufferT.Pack`` ignores that attribute."""

    def __init__(self, buffer, schema):
        self.data, self.offset, self.size, self.schema = buffer.data, buffer.offset, buffer.size, schema

    def Pack(self, builder):
        schema = self.schema
        data = None
        if self.data is not None and not isinstance(self.data, int):  # 0 means absent in _UnPack
            raw = np.asarray(self.data, dtype=np.uint8).tobytes()
            builder.Prep(_BUFFER_ALIGNMENT, len(raw))  # then the vector's own 4-byte prep adds nothing
            data = builder.CreateByteVector(raw)
        schema.BufferStart(builder)
        if data is not None:
            schema.BufferAddData(builder, data)
        schema.BufferAddOffset(builder, self.offset)
        schema.BufferAddSize(builder, self.size)
        return schema.BufferEnd(builder)


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix or ".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
