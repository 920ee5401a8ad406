"""Image files checked and read the same way by the folder datasets (image_folder, mask_folder).
Not a plugin (the leading ``_``). Errors name the dataset (``owner``) and the file."""


def check_image(file, owner):
    """Raise an error naming ``file`` unless its contents are a PNG or JPEG that Pillow can open;
    return its ``(width, height)``."""
    from PIL import Image

    from core import KerastackError

    try:
        with Image.open(file) as image:
            kind, dimensions = image.format, image.size
            image.verify()  # reads the structure (PNG: chunk checksums), decodes no pixels
    except Exception as exc:  # Pillow raises many types for a damaged file
        raise KerastackError(f"{owner}: cannot read image {file}: {reason(exc)}") from None
    if kind not in ("PNG", "JPEG"):
        raise KerastackError(f"{owner}: {file} is a {kind} image; expected PNG or JPEG")
    return dimensions


def read_image(file, size, channels, owner):
    """One image as float32 in [0, 1], shape (size, size, channels), upright per its EXIF tag."""
    import numpy as np
    from PIL import Image, ImageOps

    from core import KerastackError

    try:
        with Image.open(file) as image:
            image = ImageOps.exif_transpose(image).convert("L" if channels == 1 else "RGB")
            image = image.resize((size, size), Image.Resampling.BILINEAR)
            x = np.asarray(image, dtype="float32") / 255.0
    except Exception as exc:
        raise KerastackError(f"{owner}: cannot read image {file}: {reason(exc)}") from None
    return x[..., None] if channels == 1 else x


MASK_MODES = ("L", "P", "I", "I;16", "1")  # Pillow modes that hold indices (a palette's positions), not colours


def mask_indices(mask, size):
    """``(indices, largest)``: a mask image's class indices as int32 (size, size), resized to the
    nearest pixel, and the largest index before resizing (which may skip pixels). ``mask`` is a PIL
    image; one whose mode holds colours (RGB) is a ValueError saying what a mask must be."""
    import numpy as np
    from PIL import Image

    if mask.mode not in MASK_MODES:
        raise ValueError(f"is a {mask.mode} image; expected class indices: a grayscale (L) or palette (P) PNG")
    largest = int(np.asarray(mask).max())
    return np.asarray(mask.resize((size, size), Image.Resampling.NEAREST)).astype("int32"), largest


def reason(exc):
    """An exception as one line: ``TypeName: message``."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
