"""The split of the in-memory datasets (digits, shapes, tokens, waves and scikit-learn's tables).
Not a plugin (the leading ``_``). The file-based datasets split with ``_files.split_indices``."""


def split_arrays(x, y, validation, test, seed, stratify=True):
    """``((x, y) train, (x, y) validation, (x, y) test)``: scikit-learn's ``train_test_split`` takes
    ``test`` of all samples, then ``validation`` of all from the rest; fixed by ``seed``, stratified
    by ``y`` unless ``stratify`` is false. A share of 0 gives None for that split."""
    x_rest, y_rest, x_test, y_test = cut(x, y, test, seed, stratify)
    x_train, y_train, x_val, y_val = cut(x_rest, y_rest, validation / (1 - test), seed, stratify)
    return (x_train, y_train), _pair(x_val, y_val), _pair(x_test, y_test)


def cut(x, y, share, seed, stratify):
    """``(x_rest, y_rest, x_cut, y_cut)``: ``share`` of the samples cut off (none when it is 0)."""
    from sklearn.model_selection import train_test_split

    if share == 0:
        return x, y, None, None
    x_rest, x_cut, y_rest, y_cut = train_test_split(
        x, y, test_size=share, stratify=y if stratify else None, random_state=seed
    )
    return x_rest, y_rest, x_cut, y_cut


def _pair(x, y):
    return None if x is None else (x, y)


def classification_dataset(x, y, class_names, validation, test, seed, **extra):
    """A classification ``Dataset`` of the split of ``x`` and int32 labels ``y`` (see
    ``split_arrays``, stratified); ``extra`` goes to ``Dataset`` (e.g. ``vocab_size``)."""
    from core import Dataset

    train, val, tst = split_arrays(x, y, validation, test, seed)
    return Dataset(
        train=train, validation=val, test=tst, task="classification", class_names=tuple(class_names), **extra
    )


def segmentation_dataset(x, masks, strata, class_names, validation, test, seed):
    """A segmentation ``Dataset`` of ``x`` and int32 ``masks`` (one class per pixel), split as
    ``classification_dataset`` splits ``x`` by the labels ``strata`` (the same samples per split)."""
    import numpy as np

    from core import Dataset

    splits = split_arrays(np.arange(len(x)), strata, validation, test, seed)
    train, val, tst = (None if s is None else (x[s[0]], masks[s[0]]) for s in splits)
    return Dataset(train=train, validation=val, test=tst, task="segmentation", class_names=tuple(class_names))
