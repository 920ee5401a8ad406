"""The split of the in-memory datasets (digits, shapes, tokens, waves and scikit-learn's tables).
Not a plugin (the leading ``_``). The file-based datasets split with ``_files.split_indices``."""


def split_arrays(x, y, validation, test, seed, stratify=True):
    """``((x, y) train, (x, y) validation, (x, y) test)``: scikit-learn's ``train_test_split`` takes
    ``test`` of all samples, then ``validation`` of all from the rest; fixed by ``seed``, stratified
    by ``y`` unless ``stratify`` is false."""
    from sklearn.model_selection import train_test_split

    x_rest, x_test, y_rest, y_test = train_test_split(
        x, y, test_size=test, stratify=y if stratify else None, random_state=seed
    )
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=validation / (1 - test), stratify=y_rest if stratify else None, random_state=seed
    )
    return (x_train, y_train), (x_val, y_val), (x_test, y_test)


def classification_dataset(x, y, class_names, validation, test, seed, **extra):
    """A classification ``Dataset`` of the split of ``x`` and int32 labels ``y`` (see
    ``split_arrays``, stratified); ``extra`` goes to ``Dataset`` (e.g. ``vocab_size``)."""
    from core import Dataset

    train, val, tst = split_arrays(x, y, validation, test, seed)
    return Dataset(
        train=train, validation=val, test=tst, task="classification", class_names=tuple(class_names), **extra
    )
