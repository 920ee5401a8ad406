"""Files written whole or not at all: a crash leaves the old file or the new one, never half.

Every file kerastack writes (run records, checkpoints, exports, reports) goes through
``atomic_path``; plugins use the same writers.
"""

import contextlib
import csv
import io
import json
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from core.errors import KerastackError

PARTIAL = ".partial-"  # in the names of atomic_path's temporary files
StrPath = str | os.PathLike[str]
"""A path as the writers take it: text or a ``pathlib.Path``."""
_UMASK = os.umask(0o022)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: StrPath) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix); rename it over ``path`` on success.

    A crash at any moment leaves either the old file or the new one, never a truncated file.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Hidden, marked and with the real suffix (keras wants ".keras"): readers skip names starting
        # with "."; a writer holding the run's lock removes those a killed process left (remove_partials).
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}{PARTIAL}", suffix=path.suffix or ".tmp", dir=path.parent)
        os.close(fd)
        tmp = Path(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; the final file gets the usual mode
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:  # disk full, read-only folder, permission denied
        kept = "the previous file is unchanged" if path.exists() else "nothing was written"
        raise KerastackError(f"{path}: cannot write: {exc.strerror or exc}; {kept}") from exc
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def remove_partials(folder: StrPath) -> int:
    """Delete the temporary files that writers killed mid-write left in ``folder`` and below; call
    it only while holding the folder's lock (no live writer). Returns how many were removed."""
    found = [p for p in Path(folder).rglob(f".*{PARTIAL}*") if p.is_file()]
    for p in found:
        p.unlink(missing_ok=True)
    return len(found)


def write_bytes(path: StrPath, data: bytes) -> Path:
    """Write ``data`` to ``path`` whole or not at all (see ``atomic_path``); return ``path`` as a Path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: StrPath, text: str) -> Path:
    """Write ``text`` as UTF-8 to ``path`` whole or not at all; return ``path`` as a Path."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: StrPath, obj: Any) -> Path:
    """Write ``obj`` as indented JSON (numpy arrays as lists, paths as text) whole or not at all;
    return ``path`` as a Path."""
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_default) + "\n")


def write_csv(path: StrPath, rows: Sequence[Mapping[str, Any]]) -> Path:
    """``rows``: a list of dicts, as one CSV whose header is the union of their keys; written whole
    or not at all. Returns ``path`` as a Path."""
    buf = io.StringIO()
    if rows:
        fields = list(dict.fromkeys(k for row in rows for k in row))
        writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return write_text(path, buf.getvalue())


def read_json(path: StrPath, what: str = "file") -> Any:
    """The JSON in ``path``; a missing or unreadable file is a ``KerastackError`` calling it ``what``."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise KerastackError(f"{path}: no such {what}") from None
    except (OSError, ValueError) as exc:
        raise KerastackError(f"{path}: unreadable {what}: {exc}") from None


def _default(obj: object) -> object:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    return repr(obj)


def format_size(nbytes: float, unit: str | None = None) -> str:
    """``"512 B"``, ``"79.5 KiB"``, ``"7.5 MiB"``: a file size as people read it.

    ``unit="KiB"`` (or ``"MiB"``) keeps one unit, for a column of sizes to compare (``"7642.5 KiB"``).
    """
    if unit is not None:
        scale = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}[unit]
        return f"{nbytes:.0f} B" if unit == "B" else f"{nbytes / scale:.1f} {unit}"
    for unit in ("B", "KiB", "MiB"):
        if nbytes < 1024:
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return f"{nbytes:.1f} GiB"
