"""``tokens``: synthetic token sequences whose label depends only on the order of two markers."""

from core import hookimpl

OWNER = "dataset 'tokens'"

CLASS_NAMES = ("B-first", "A-first")
MARKER_A, MARKER_B = 1, 2  # token ids; every other token is filler, and 0 is left for padding


@hookimpl
def register_datasets(register):
    register("tokens", load, summary="synthetic int32 token sequences, label = whether marker A precedes B")


def load(samples=2000, length=24, vocab=50, seed=0, validation=0.15, test=0.15):
    """Sequences as int32 token ids with shape (length,); a stratified split fixed by ``seed``.

    Every sequence holds ``MARKER_A`` and ``MARKER_B`` exactly once, at random positions, among filler
    ids drawn uniformly from ``[3, vocab)``. The label is 1 where A comes before B. Both markers are in
    every sequence, so counting tokens says nothing about the label: a model must see their order.
    No sequence is padded; id 0 is reserved for padding all the same, so ``vocab_size`` is ``vocab``.
    """
    import numpy as np

    from plugins.datasets._checks import check_fractions, check_range, check_samples
    from plugins.datasets._split import classification_dataset

    check_fractions(OWNER, validation=validation, test=test)
    check_range(OWNER, "length", length, 2, 4096)
    check_range(OWNER, "vocab", vocab, 4, 2**31 - 1, why=" (padding, 2 markers, fillers)")
    check_samples(OWNER, samples, len(CLASS_NAMES), validation, test)
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(samples) % len(CLASS_NAMES)).astype("int32")
    x = rng.integers(MARKER_B + 1, vocab, (samples, length), dtype="int32")
    # Two distinct random positions per sequence; the label decides which marker takes the first.
    first, second = np.sort(rng.random((samples, length)).argsort(axis=1)[:, :2], axis=1).T
    rows = np.arange(samples)
    x[rows, first] = np.where(y == 1, MARKER_A, MARKER_B)
    x[rows, second] = np.where(y == 1, MARKER_B, MARKER_A)
    return classification_dataset(x, y, CLASS_NAMES, validation, test, seed, vocab_size=vocab)
