"""``digits``: scikit-learn's bundled 8×8 handwritten digits (1,797 real images, no download)."""

from core import hookimpl

OWNER = "dataset 'digits'"


@hookimpl
def register_datasets(register):
    register("digits", load, summary="1,797 real 8x8 handwritten digits (scikit-learn), 10 classes")


def load(validation=0.15, test=0.15, seed=0):
    """Images as float32 in [0, 1] with shape (8, 8, 1); a stratified split fixed by ``seed``."""
    from sklearn.datasets import load_digits

    from plugins.datasets._checks import check_fractions
    from plugins.datasets._split import classification_dataset

    check_fractions(OWNER, validation=validation, test=test)
    bunch = load_digits()
    x = (bunch.images / 16.0).astype("float32")[..., None]
    y = bunch.target.astype("int32")
    return classification_dataset(x, y, [str(i) for i in range(10)], validation, test, seed)
