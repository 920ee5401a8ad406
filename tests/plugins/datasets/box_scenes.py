"""Images with coloured rectangles and their boxes, drawn with PIL for the detection dataset tests
(yolo_folder, coco, hf and tfds box features): the boxes a reader returns must cover the drawn pixels."""

import numpy as np
from PIL import Image, ImageDraw

COLOURS = ((255, 40, 40), (40, 90, 255))  # class 0 red, class 1 blue, on black
NAMES = ("red", "blue")


def scene(rng, width=40, height=30, count=None):
    """``(image, boxes)``: a PIL image with ``count`` (1 to 3 at random) filled rectangles that do not
    overlap, and their boxes ``[(class, x0, y0, x1, y1)]`` in pixels (x1, y1 exclusive)."""
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    boxes = []
    for _ in range(int(rng.integers(1, 4)) if count is None else count):
        for _try in range(50):
            w, h = int(rng.integers(6, width // 2)), int(rng.integers(6, height // 2))
            x0, y0 = int(rng.integers(0, width - w)), int(rng.integers(0, height - h))
            if all(x0 >= b[3] or b[1] >= x0 + w or y0 >= b[4] or b[2] >= y0 + h for b in boxes):
                break
        cls = int(rng.integers(0, 2))
        draw.rectangle([x0, y0, x0 + w - 1, y0 + h - 1], fill=COLOURS[cls])  # PIL's corners are inclusive
        boxes.append((cls, x0, y0, x0 + w, y0 + h))
    return image, boxes


def yolo_line(box, width, height):
    cls, x0, y0, x1, y1 = box
    return f"{cls} {(x0 + x1) / 2 / width:.6f} {(y0 + y1) / 2 / height:.6f} {(x1 - x0) / width:.6f} {(y1 - y0) / height:.6f}"


def coverage(x, y):
    """For images ``x`` (N, S, S, 3) in [0, 1] and targets ``y`` (N, K, 5), the share of each class's
    coloured pixels that lie inside a box of that class: 1.0 when the boxes cover the shapes."""
    inside, total = 0, 0
    size = x.shape[1]
    centres = (np.arange(size) + 0.5) / size
    for image, rows in zip(x, y):
        for cls, colour in enumerate(COLOURS):
            pixels = np.all(np.abs(image - np.array(colour) / 255) < 0.2, axis=-1)
            covered = np.zeros_like(pixels)
            for x0, y0, x1, y1, c in rows:
                if c == cls:
                    covered |= (
                        (centres[None, :] >= x0)
                        & (centres[None, :] <= x1)
                        & ((centres[:, None] >= y0) & (centres[:, None] <= y1))
                    )
            inside += int((pixels & covered).sum())
            total += int(pixels.sum())
    return inside / max(total, 1)
