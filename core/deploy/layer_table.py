"""The per-layer quantization error table (``layer_errors`` of a .tflite's metadata), as Markdown
for the export report and as text for ``kerastack verify --layers``: one formatter, one table."""

from pathlib import Path
from typing import Any

from core.errors import UsageError
from core.files import StrPath

COLUMNS = ("#", "Keras layer", "worst-channel SNR dB (channel)", "rel RMSE", "cosine", "")
KINDS = {
    "local": "each layer's own error: its int8 op against a float twin fed the same inputs",
    "cumulative": "error accumulated up to each layer: the file against the float32 file, same inputs",
}


def format_layer_errors(rows: list[dict[str, Any]], *, markdown: bool = False) -> str:
    """The ``layer_errors`` rows (worst first) as a table: rank, Keras layer (with the layers fused
    into its op: ``re_lu (+ batch_normalization, conv2d)``), worst channel's SNR in dB
    (which channel), RMSE relative to the float activation's spread, cosine similarity, and
    ``FLAGGED`` past the exporter's thresholds. ``markdown``: a Markdown table, else aligned text."""
    cells = [
        [
            str(i),
            row["layer"] + (f" (+ {', '.join(row['fused'])})" if row.get("fused") else ""),
            f"{row['snr_db']:.1f} ({row['worst_channel']})" if row.get("worst_channel") is not None else "—",
            f"{row['rel_rmse']:.3g}",
            f"{row['cosine']:.4f}",
            "FLAGGED" if row.get("flagged") else "",
        ]
        for i, row in enumerate(rows, 1)
    ]
    kind = rows[0].get("kind") if rows else None
    note = f"({KINDS[kind]})" if kind in KINDS else ""
    if markdown:
        lines = ["| " + " | ".join(COLUMNS) + " |", "|---:|---|---:|---:|---:|---|"]
        lines += ["| " + " | ".join(f"`{c}`" if j == 1 else c for j, c in enumerate(r)) + " |" for r in cells]
        return "\n".join(lines + ([f"\n{note[1:-1].capitalize()}."] if note else [])) + "\n"
    widths = [max(len(c) for c in column) for column in zip(COLUMNS, *cells)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [COLUMNS, *cells]]
    return "\n".join(lines + ([note] if note else [])) + "\n"


def recorded_layer_errors(tflite_path: StrPath) -> dict[str, Any]:
    """This file's entry in the ``model.json`` beside it (``layer_errors`` and, for a mixed model,
    ``mixed``: they are not embedded in the .tflite); a one-line :class:`UsageError` where there are none."""
    import json

    path = Path(tflite_path)
    meta_path = path.parent / "model.json"
    try:
        entry = (json.loads(meta_path.read_text(encoding="utf-8")).get("files") or {}).get(path.name) or {}
    except FileNotFoundError:
        raise UsageError(f"{path}: --layers reads the model.json beside it (the export's); there is none") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{meta_path}: cannot read it ({exc})") from None
    if entry.get("layer_errors") is None:
        why = entry.get("layer_errors_error")
        raise UsageError(
            f"{path} has no per-layer errors recorded"
            + (
                f" (measuring them failed: {why})"
                if why
                else ": they are measured when an int8 or int16x8 file is exported"
            )
        )
    return entry
