"""A detector's output shown: each detection's class name, score and box in pixels, and the image
with the boxes drawn (each class its colour), as a PNG.

numpy and the standard library (PNGs written by ``mask.write_png``); reading an image file
(``--input IMG.png``) takes Pillow, imported only then.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .mask import palette, viewable, write_png

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
MIN_SCORE = 0.25  # detections shown (the file returns weaker ones too, for mAP)
MIN_SIDE = 256  # a drawn image smaller than this is scaled up (whole pixels) so its boxes show


def read_image(path: Path, shape: tuple) -> np.ndarray:
    """The image file at ``path`` as one raw sample of ``shape`` (H, W[, C]): pixels 0-255 as
    float32, converted to the model's channels (gray or RGB) and resized (bilinear) to H x W."""
    try:
        from PIL import Image
    except ImportError:
        raise ValueError(f"{path}: reading an image file needs Pillow (pip install pillow), or pass a .npy") from None
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with Image.open(path) as image:
            channels = shape[2] if len(shape) == 3 else 1
            image = image.convert("L" if channels == 1 else "RGB").resize((shape[1], shape[0]), Image.BILINEAR)
            x = np.asarray(image, dtype=np.float32)
    except OSError as e:
        raise ValueError(f"{path}: not an image Pillow reads ({e})") from None
    return x.reshape(shape)


def describe(rows: np.ndarray, labels: list[str] | None, size: tuple[int, int], min_score: float = MIN_SCORE):
    """The detections of one image scoring ``min_score`` or more: ``[{"label", "class", "score",
    "box": [x_min, y_min, x_max, y_max] in pixels of an image of ``size`` (H, W)}]``, best first."""
    height, width = size
    found = []
    for top, left, bottom, right, c, score in rows:
        if c < 0 or score < min_score:
            continue
        c = int(c)
        box = [float(left * width), float(top * height), float(right * width), float(bottom * height)]
        found.append(
            {
                "class": c,
                "label": labels[c] if labels and c < len(labels) else str(c),
                "score": float(score),
                "box": box,
            }
        )
    return sorted(found, key=lambda d: -d["score"])


def drawn(image: np.ndarray, found: list[dict], num_classes: int) -> np.ndarray:
    """``image`` as RGB uint8, scaled up by a whole factor to at least ``MIN_SIDE`` pixels, with a
    two-pixel rectangle around each detection in its class's colour (PASCAL VOC's, past black)."""
    rgb = viewable(image)
    factor = max(1, -(-MIN_SIDE // max(rgb.shape[:2])))
    rgb = np.repeat(np.repeat(rgb, factor, axis=0), factor, axis=1)
    height, width = rgb.shape[:2]
    colours = palette(num_classes + 1)[1:]
    for d in found:
        x0, y0, x1, y1 = (int(round(v * factor)) for v in d["box"])
        x0, x1 = np.clip([x0, x1 - 1], 0, width - 1)
        y0, y1 = np.clip([y0, y1 - 1], 0, height - 1)
        colour = colours[d["class"] % len(colours)]
        for t in range(2):
            rgb[y0 : y1 + 1, min(x0 + t, x1)] = rgb[y0 : y1 + 1, max(x1 - t, x0)] = colour
            rgb[min(y0 + t, y1), x0 : x1 + 1] = rgb[max(y1 - t, y0), x0 : x1 + 1] = colour
    return rgb


def draw(x: np.ndarray, outputs: np.ndarray, labels: list[str] | None, out: Path, stem: str):
    """For each image of ``x`` and its detection rows (``TFLiteModel.predict``'s ``(K, 6)``):
    ``STEM_I_boxes.png`` in folder ``out``. Returns ``(records, lines)`` for ``--json`` and the terminal."""
    num_classes = len(labels) if labels else int(max(outputs[..., 4].max(initial=0), 0)) + 1
    records, lines = [], []
    for i, (image, rows) in enumerate(zip(x, outputs)):
        found = describe(rows, labels, image.shape[:2])
        png = write_png(out / f"{stem}_{i}_boxes.png", drawn(image, found, num_classes))
        records.append({"index": i, "detections": found, "image": str(png)})
        shown = ", ".join(f"{d['label']} {d['score']:.2f} [{', '.join(f'{v:.0f}' for v in d['box'])}]" for d in found)
        lines.append(f"{i}: {shown or 'nothing found'} -> {png}")
    return records, lines
