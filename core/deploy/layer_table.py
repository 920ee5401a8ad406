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


def format_layer_errors(rows: list[dict[str, Any]], *, markdown: bool = False, width: int | None = None) -> str:
    """The ``layer_errors`` rows (worst first) as a table: rank, Keras layer (with the layers fused
    into its op: ``re_lu (+ batch_normalization, conv2d)``), worst channel's SNR in dB
    (which channel), RMSE relative to the float activation's spread, cosine similarity, and
    ``FLAGGED`` past the exporter's thresholds. A layer whose float activation is the same for every
    sample (or about 0) reads "no signal": its metrics say nothing. ``markdown``: a Markdown table,
    else aligned text; ``width``: the layer column cut to that many characters."""
    cells = [
        [str(i), _layer(row, width), *_metrics(row), "FLAGGED" if row.get("flagged") else ""]
        for i, row in enumerate(rows, 1)
    ]
    kind = rows[0].get("kind") if rows else None
    notes = [KINDS[kind]] if kind in KINDS else []
    notes += [NO_SIGNAL] if any(row.get("no_signal") for row in rows) else []
    if markdown:
        lines = ["| " + " | ".join(COLUMNS) + " |", "|---:|---|---:|---:|---:|---|"]
        lines += ["| " + " | ".join(f"`{c}`" if j == 1 else c for j, c in enumerate(r)) + " |" for r in cells]
        return "\n".join(lines + ([""] if notes else []) + [f"{n[0].upper()}{n[1:]}." for n in notes]) + "\n"
    widths = [max(len(c) for c in column) for column in zip(COLUMNS, *cells)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [COLUMNS, *cells]]
    return "\n".join(lines + [f"({n})" for n in notes]) + "\n"


NO_SIGNAL = "no signal: the float activation is the same for every sample, or about 0; nothing to lose, not flagged"


def _layer(row: dict[str, Any], width: int | None) -> str:
    text = row["layer"] + (f" (+ {', '.join(row['fused'])})" if row.get("fused") else "")
    return text if width is None or len(text) <= width else text[: width - 1] + "…"


def _metrics(row: dict[str, Any]) -> list[str]:
    if row.get("no_signal"):
        return ["no signal", "—", "—"]
    snr = f"{row['snr_db']:.1f} ({row['worst_channel']})" if row.get("worst_channel") is not None else "—"
    return [snr, f"{row['rel_rmse']:.3g}", f"{row['cosine']:.4f}"]


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
