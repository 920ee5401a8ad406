"""Option checks shared by the built-in dataset plugins. A bad option is a usage error (exit 2)
that names the dataset, the option, its value and what is valid. Not a plugin (the leading ``_``)."""


def check_fractions(owner, **fractions):
    """Each share in [0, 1) and all of them together below 1 (train keeps the rest).

    A share of 0 means no such split (``Dataset.validation`` or ``.test`` is None): without a
    validation split, training logs no ``val_*`` metrics; without a test split, a run is judged on
    its validation split (``Dataset.evaluation_split``)."""
    from core import UsageError

    if not (all(0 <= share < 1 for share in fractions.values()) and sum(fractions.values()) < 1):
        given = ", ".join(f"{name}={share}" for name, share in fractions.items())
        raise UsageError(
            f"{owner}: options {' and '.join(fractions)} must be fractions in [0, 1) summing below 1 "
            f"(0: no such split), got {given}"
        )


def check_range(owner, name, value, low, high=None, what="an integer", why=""):
    """``low <= value <= high`` (no upper bound when ``high`` is None); ``why`` explains the bounds."""
    from core import UsageError

    if value < low or (high is not None and value > high):
        valid = f"at least {low}" if high is None else f"in [{low}, {high}]"
        raise UsageError(f"{owner}: option {name}={value}: expected {what} {valid}{why}")


def check_samples(owner, samples, classes, validation, test):
    """Enough ``samples`` that every split holds every one of ``classes`` classes."""
    import math

    smallest = min(share for share in (validation, test, 1 - validation - test) if share > 0)
    if samples * smallest < classes:
        check_range(
            owner,
            "samples",
            samples,
            math.ceil(classes / smallest),
            why=f" to hold all {classes} classes in every split",
        )
