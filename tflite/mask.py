"""A segmentation model's output drawn: the class of each pixel (argmax) as a palette PNG, and an
overlay of the classes on the input image, with each class's share of the pixels.

numpy and the standard library only (PNG written with zlib and struct), like the rest of tflite/.
"""

from __future__ import annotations

import os
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np

ALPHA = 0.5  # the overlay's weight of a class colour over the image


def is_segmentation(metadata: dict | None, labels: list[str] | None, outputs: np.ndarray) -> bool:
    """Whether ``outputs`` are per-pixel class scores: the metadata says so, or they are
    (n, H, W, C) with one channel per label."""
    if (metadata or {}).get("task") == "segmentation":
        return outputs.ndim == 4
    return outputs.ndim == 4 and labels is not None and outputs.shape[-1] == len(labels) > 1


def palette(count: int) -> np.ndarray:
    """``count`` RGB colours (uint8, (count, 3)): PASCAL VOC's colour map, so class 0 is black and
    the next ones dark red, green, olive, blue, ... as in most segmentation tools. At most 256."""
    if count > 256:
        raise ValueError(f"a palette PNG holds at most 256 classes; the model has {count}")
    index = np.arange(count)
    colours = np.zeros((count, 3), dtype=np.uint8)
    for bit in range(8):
        for channel in range(3):
            colours[:, channel] |= (((index >> (3 * bit + channel)) & 1) << (7 - bit)).astype(np.uint8)
    return colours


def png_bytes(pixels: np.ndarray, colours: np.ndarray | None = None) -> bytes:
    """An 8-bit PNG of ``pixels``: (H, W) indices into ``colours`` (a palette PNG), or (H, W, 3) RGB."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    height, width = pixels.shape[:2]
    kind = 3 if colours is not None else 2  # PNG colour types: 3 indexed, 2 RGB
    rows = pixels.reshape(height, -1)
    raw = np.hstack([np.zeros((height, 1), dtype=np.uint8), rows]).tobytes()  # filter byte 0 per row

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    parts = [b"\x89PNG\r\n\x1a\n", chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, kind, 0, 0, 0))]
    if colours is not None:
        parts.append(chunk(b"PLTE", np.asarray(colours, dtype=np.uint8).tobytes()))
    parts += [chunk(b"IDAT", zlib.compress(raw, 9)), chunk(b"IEND", b"")]
    return b"".join(parts)


def write_png(path: Path, pixels: np.ndarray, colours: np.ndarray | None = None) -> Path:
    """``png_bytes`` written to ``path`` whole or not at all (a temporary file renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(png_bytes(pixels, colours))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def viewable(image: np.ndarray) -> np.ndarray:
    """One input image as RGB uint8: [0, 1] floats scaled by 255, [0, 255] kept, anything else
    (standardized inputs) stretched from its minimum to its maximum; gray repeated to RGB."""
    a = np.asarray(image, dtype=np.float64)
    a = a[..., None] if a.ndim == 2 else a
    a = np.repeat(a[..., :1], 3, axis=-1) if a.shape[-1] != 3 else a
    low, high = float(a.min()), float(a.max())
    if low >= 0 and high <= 1:
        a = a * 255
    elif not (low >= 0 and high <= 255):
        a = (a - low) / (high - low) * 255 if high > low else np.zeros_like(a)
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def overlay(image: np.ndarray, mask: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """The input ``image`` as RGB with each pixel of a class other than 0 (usually the background,
    left as it is) tinted with the class colour; a mask of another size is scaled to the image's
    nearest pixels."""
    rgb = viewable(image)
    height, width = rgb.shape[:2]
    rows = np.arange(height) * mask.shape[0] // height
    cols = np.arange(width) * mask.shape[1] // width
    mask = mask[rows][:, cols]
    tinted = (1 - ALPHA) * rgb + ALPHA * colours[mask].astype(np.float64)
    return np.where(mask[..., None] > 0, np.rint(tinted), rgb).astype(np.uint8)


def shares(mask: np.ndarray, labels: list[str]) -> dict[str, float]:
    """Each class's share of the mask's pixels, the largest first; classes absent left out."""
    counts = np.bincount(mask.ravel(), minlength=len(labels))
    order = np.argsort(-counts, kind="stable")
    return {labels[c]: float(counts[c] / mask.size) for c in order if counts[c]}


def draw(x: np.ndarray, outputs: np.ndarray, labels: list[str] | None, out: Path, stem: str):
    """For each image of ``x`` and its (H, W, C) scores: ``STEM_I_mask.png`` (palette) and
    ``STEM_I_overlay.png`` in folder ``out``. Returns ``(records, lines)``: per image its files and
    class shares, for ``--json`` and for the terminal."""
    labels = list(labels) if labels is not None else [str(c) for c in range(outputs.shape[-1])]
    if len(labels) != outputs.shape[-1]:
        raise ValueError(f"{len(labels)} labels but the model outputs {outputs.shape[-1]} classes per pixel")
    colours = palette(len(labels))
    records, lines = [], []
    for i, (image, scores) in enumerate(zip(x, outputs)):
        mask = scores.argmax(-1).astype(np.uint8)
        mask_png = write_png(out / f"{stem}_{i}_mask.png", mask, colours)
        overlay_png = write_png(out / f"{stem}_{i}_overlay.png", overlay(image, mask, colours))
        present = shares(mask, labels)
        records.append({"index": i, "mask": str(mask_png), "overlay": str(overlay_png), "classes": present})
        classes = ", ".join(f"{name} {share:.1%}" for name, share in present.items())
        lines.append(f"{i}: {classes} -> {mask_png}, {overlay_png.name}")
    return records, lines
