"""``mask_folder``: your own images with a class per pixel (semantic segmentation), read from disk.

``path`` holds ``images/`` (PNG or JPEG) and ``masks/`` (PNG) with the same file stems:
``images/street1.jpg`` goes with ``masks/street1.png``. A mask holds class indices: a grayscale PNG
whose pixel values are the indices, or a palette PNG whose palette positions are (its colours are
only how an image viewer shows them).
"""

from core import hookimpl

OWNER = "dataset 'mask_folder'"
IMAGES = (".png", ".jpg", ".jpeg")
LABELS_FILE = "labels.txt"


@hookimpl
def register_datasets(register):
    register(
        "mask_folder",
        load,
        summary="your own images/ and masks/ (PNG class indices or palette) for segmentation (--data-opt path=DIR)",
    )


def load(path="", classes="", size=32, channels=3, validation=0.15, test=0.15, seed=0):
    """Splits of arrays: images float32 in [0, 1], shape (size, size, channels), resized bilinearly
    (grayscale for ``channels=1``); masks int32 (size, size), resized to the nearest pixel.

    Class names: ``classes`` (comma-separated, in index order: ``background,road,car``), else
    ``labels.txt`` in ``path`` (a name a line), else the indices found (``0``, ``1``, ...). An image
    without its mask, a mask whose size differs from its image's, or a mask holding an index beyond
    the classes is an error naming the file. The split (not stratified) is fixed by ``seed``. The
    whole folder is read into memory, so ``--augment`` applies to it.
    """
    import numpy as np

    from core import Dataset, KerastackError
    from plugins.datasets._files import split_indices, take
    from plugins.datasets._hub import check_image_options
    from plugins.datasets._images import check_image, read_image

    check_image_options(OWNER, size, channels)
    root = _root(path)
    pairs = find_pairs(root)
    names = class_names(root, classes)
    x = np.stack([read_image(image, size, channels, OWNER) for image, _ in pairs])
    masks = np.stack([read_mask(image, mask, size, check_image(image, OWNER), names) for image, mask in pairs])
    if names is None:
        names = tuple(str(i) for i in range(int(masks.max()) + 1))
    if len(names) < 2:
        raise KerastackError(f"{OWNER}: {len(names)} class ({', '.join(names)}); segmentation needs at least 2")
    rows = split_indices(len(pairs), {"validation": validation, "test": test}, seed, OWNER, "images")
    train, val, tst = (take(r, x, masks) for r in rows)
    return Dataset(train=train, validation=val, test=tst, task="segmentation", class_names=names)


def _root(path):
    """``path`` as a folder holding ``images/`` and ``masks/``; a usage error saying what is missing."""
    from pathlib import Path

    from core import UsageError

    if not path:
        raise UsageError(
            f"{OWNER}: option path is not set; give the folder of images/ and masks/ with --data-opt path=DIR"
        )
    root = Path(path).expanduser()
    if not root.is_dir():
        raise UsageError(f"{OWNER}: option path={path!r}: no such folder")
    for sub in ("images", "masks"):
        if not (root / sub).is_dir():
            raise UsageError(
                f"{OWNER}: {root} has no {sub}/ folder; expected {root}/images/NAME.png and {root}/masks/NAME.png"
            )
    return root


def find_pairs(root):
    """``[(image, mask)]``: every PNG/JPEG in ``images/`` (sorted; hidden files skipped) and
    ``masks/STEM.png``; an error naming the first image without a mask."""
    from core import KerastackError

    images = sorted(
        p
        for p in (root / "images").iterdir()
        if p.suffix.lower() in IMAGES and p.is_file() and not p.name.startswith(".")
    )
    if not images:
        raise KerastackError(f"{OWNER}: {root / 'images'} holds no PNG or JPEG images")
    masks = {p.stem: p for p in (root / "masks").iterdir() if p.suffix.lower() == ".png" and p.is_file()}
    missing = [image for image in images if image.stem not in masks]
    if missing:
        more = f" (and {len(missing) - 1} more images)" if len(missing) > 1 else ""
        raise KerastackError(
            f"{OWNER}: image {missing[0]} has no mask: expected {root / 'masks' / missing[0].stem}.png{more}"
        )
    return [(image, masks[image.stem]) for image in images]


def class_names(root, classes):
    """The class names from ``classes`` (comma-separated), else from ``root/labels.txt``, else None."""
    from core import KerastackError

    if classes:
        names = tuple(c.strip() for c in str(classes).split(","))
        where = "option classes"
    elif (root / LABELS_FILE).is_file():
        try:
            names = tuple(line.strip() for line in (root / LABELS_FILE).read_text(encoding="utf-8").splitlines())
        except (OSError, UnicodeDecodeError) as exc:
            raise KerastackError(f"{OWNER}: cannot read {root / LABELS_FILE}: {exc}") from None
        names = tuple(n for n in names if n)
        where = str(root / LABELS_FILE)
    else:
        return None
    if "" in names or len(set(names)) != len(names):
        raise KerastackError(f"{OWNER}: {where}: class names must be distinct and not empty, got {', '.join(names)}")
    return names


def read_mask(image, file, size, image_size, names):
    """``file``'s class indices as int32 (size, size), resized to the nearest pixel; errors name the
    file: not an index image, not the size of ``image`` (``image_size``, width by height), or an index
    beyond ``names``."""
    from PIL import Image

    from core import KerastackError
    from plugins.datasets._images import mask_indices, reason

    try:
        with Image.open(file) as mask:
            dimensions = mask.size
            indices, largest = mask_indices(mask, size)
    except ValueError as exc:
        raise KerastackError(f"{OWNER}: mask {file} {exc}") from None
    except Exception as exc:  # Pillow raises many types for a damaged file
        raise KerastackError(f"{OWNER}: cannot read mask {file}: {reason(exc)}") from None
    if dimensions != image_size:
        raise KerastackError(
            f"{OWNER}: mask {file} is {dimensions[0]}x{dimensions[1]} but its image {image} is "
            f"{image_size[0]}x{image_size[1]}"
        )
    if names is not None and largest >= len(names):
        raise KerastackError(
            f"{OWNER}: mask {file} holds class index {largest}; the {len(names)} classes "
            f"({', '.join(names)}) take 0..{len(names) - 1}"
        )
    return indices
