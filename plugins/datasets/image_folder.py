"""``image_folder``: your own images, one subfolder per class, streamed from disk batch by batch."""

from core import hookimpl

SUFFIXES = (".png", ".jpg", ".jpeg")
OWNER = "dataset 'image_folder'"
DEFAULT_SIZE = 32  # load()'s default: small and fast; a pretrained backbone wants its own (224)


@hookimpl
def register_datasets(register):
    register(
        "image_folder",
        load,
        summary="your own PNG/JPEG images in class subfolders (--data-opt path=DIR), streamed in batches",
    )


def load(path="", size=DEFAULT_SIZE, channels=3, batch_size=32, validation=0.15, test=0.15, seed=0):
    """Each split is a ``keras.utils.PyDataset`` of ``(images, labels)`` batches of ``batch_size``
    (kerastack sets it to training's ``--batch-size``; see ``register_datasets``): images float32 in [0, 1] with shape (size, size, channels), squeezed to a square (not cropped),
    grayscale for ``channels=1``; labels int32.

    Class names are the subfolder names, sorted; a class's images are the PNG and JPEG files
    anywhere under its folder (other files are ignored). The split is stratified by class and fixed
    by ``seed``; the train split is read in a new order every epoch. Every file is checked here
    (Pillow's ``verify``: its structure, no pixels decoded), so that a damaged file stops the run
    before training, naming the file. Images larger than the default ``size`` (32) get a warning
    line saying so: a model (a pretrained backbone's ``size`` too) then sees 32x32 pixels.
    """
    from functools import partial

    from core import Dataset, UsageError
    from plugins.datasets._files import split_indices
    from plugins.datasets._images import check_image, read_image

    if channels not in (1, 3):
        raise UsageError(f"{OWNER}: option channels={channels}: valid: 1 (grayscale), 3 (RGB)")
    if not 4 <= size <= 1024:
        raise UsageError(f"{OWNER}: option size={size}: expected an integer in [4, 1024]")
    if batch_size < 1:
        raise UsageError(f"{OWNER}: option batch_size={batch_size}: expected at least 1")
    files, labels, class_names = find_images(path)
    train, val, tst = split_indices(
        len(files), {"validation": validation, "test": test}, seed, OWNER, "images", labels=labels
    )
    sizes = [check_image(file, OWNER) for file in files]
    _say_resized(sizes, size)

    from plugins.datasets._streaming import FileBatches  # imports keras: only now, after the checks

    read = partial(read_image, size=size, channels=channels, owner=OWNER)

    def split(rows, shuffle):
        if rows is None:  # a share of 0: no such split
            return None
        return FileBatches(
            [files[i] for i in rows], [labels[i] for i in rows], read, batch_size=batch_size, shuffle=shuffle, seed=seed
        )

    return Dataset(
        train=split(train, True),
        validation=split(val, False),
        test=split(tst, False),
        task="classification",
        class_names=class_names,
    )


def find_images(path):
    """``(files, labels, class_names)`` under folder ``path``; usage errors name what is missing."""
    from plugins.datasets._files import class_files

    return class_files(path, SUFFIXES, OWNER, "IMAGE.png", "images")


def _say_resized(sizes, size):
    """One line on stderr where the default ``size`` shrinks images larger than it (a user who left it
    out may expect the model to see their images' own size)."""
    from plugins.datasets._files import warn

    width, height = max(sizes, key=lambda s: s[0] * s[1])
    if size == DEFAULT_SIZE and min(width, height) > size:
        warn(
            "image_folder",
            f"images of up to {width}x{height} are resized to {size}x{size}, the default size; give "
            "--data-opt size=N to keep more of them (ImageNet backbones were trained at 224)",
        )
