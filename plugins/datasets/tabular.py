"""``iris``, ``wine``, ``breast_cancer``, ``diabetes``: scikit-learn's bundled tables (no download)."""

from functools import partial

from core import hookimpl

# name → (scikit-learn loader, task, summary)
TABLES = {
    "iris": ("load_iris", "classification", "150 iris flowers, 4 measurements, 3 species (scikit-learn)"),
    "wine": ("load_wine", "classification", "178 wines, 13 chemical analyses, 3 cultivars (scikit-learn)"),
    "breast_cancer": (
        "load_breast_cancer",
        "classification",
        "569 breast tumours, 30 cell measurements, malignant or benign (scikit-learn)",
    ),
    "diabetes": (
        "load_diabetes",
        "regression",
        "442 diabetes patients, 10 measurements, disease progression after a year (scikit-learn)",
    ),
}


@hookimpl
def register_datasets(register):
    for name, (_, _, summary) in TABLES.items():
        register(name, partial(load, name), summary=summary)


def load(name, validation=0.15, test=0.15, seed=0):
    """Features as float32 with shape (features,), standardized with the training split's mean and std.

    Classification splits are stratified; labels are int32 and ``class_names`` the table's target
    names. Regression targets stay in their original units, float32 with shape (n, 1).
    """
    import sklearn.datasets

    from core import Dataset
    from plugins.datasets._checks import check_fractions
    from plugins.datasets._split import split_arrays

    check_fractions(f"dataset {name!r}", validation=validation, test=test)
    loader, task, _ = TABLES[name]
    # Unscaled diabetes features: the standardization below must see only the training split.
    bunch = getattr(sklearn.datasets, loader)(**({"scaled": False} if name == "diabetes" else {}))
    x = bunch.data.astype("float64")
    if task == "classification":
        y, class_names = bunch.target.astype("int32"), tuple(str(n) for n in bunch.target_names)
    else:
        y, class_names = bunch.target.astype("float32")[:, None], None
    train, val, tst = split_arrays(x, y, validation, test, seed, stratify=task == "classification")
    mean, std = train[0].mean(axis=0), train[0].std(axis=0)
    std[std == 0] = 1
    train, val, tst = (
        None if s is None else (((s[0] - mean) / std).astype("float32"), s[1]) for s in (train, val, tst)
    )
    return Dataset(train=train, validation=val, test=tst, task=task, class_names=class_names)
