"""``digits``: scikit-learn's bundled 8×8 handwritten digits (1,797 real images, no download)."""

from core import hookimpl

OWNER = "dataset 'digits'"


@hookimpl
def register_datasets(register):
    register("digits", load, summary="1,797 real 8x8 handwritten digits (scikit-learn), 10 classes")


def load(validation=0.15, test=0.15, seed=0):
    """Images as float32 in [0, 1] with shape (8, 8, 1); a stratified split fixed by ``seed``."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from core import Dataset
    from plugins.datasets._checks import check_fractions

    check_fractions(OWNER, validation=validation, test=test)
    bunch = load_digits()
    x = (bunch.images / 16.0).astype("float32")[..., None]
    y = bunch.target.astype("int32")
    x_rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=test, stratify=y, random_state=seed)
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=validation / (1 - test), stratify=y_rest, random_state=seed
    )
    return Dataset(
        train=(x_train, y_train),
        validation=(x_val, y_val),
        test=(x_test, y_test),
        task="classification",
        class_names=tuple(str(i) for i in range(10)),
    )
