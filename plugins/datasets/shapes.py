"""``shapes``: synthetic grayscale circles, squares and triangles, drawn with numpy (no download);
a class per image, or (``task=segmentation``) a class per pixel."""

from core import hookimpl

OWNER = "dataset 'shapes'"

CLASS_NAMES = ("circle", "square", "triangle")
TASKS = ("classification", "segmentation")
SIDES = (0, 4, 3)  # per class; 0 means a circle
AREA = (0.08, 0.3)  # a shape covers this fraction of the image, whatever its class


@hookimpl
def register_datasets(register):
    register(
        "shapes",
        load,
        summary="synthetic grayscale circles, squares and triangles (16x16), 3 classes; task=segmentation: masks",
    )


def load(samples=1500, size=16, noise=0.05, seed=0, validation=0.15, test=0.15, task="classification"):
    """Images as float32 in [0, 1] with shape (size, size, 1); a split stratified by shape, fixed by ``seed``.

    Each shape is filled, anti-aliased, rotated at random and placed at random. Its area is drawn from
    the same range for every class, so the mean intensity of an image says nothing about its class.
    ``task=segmentation`` gives the same images (and splits) with int32 masks (size, size) as
    targets: 0 for background, 1 + the shape's class for a pixel whose centre lies inside the shape;
    classes ``("background", "circle", "square", "triangle")``.
    """
    import numpy as np

    from core import UsageError, did_you_mean
    from plugins.datasets._checks import check_fractions, check_range, check_samples
    from plugins.datasets._split import classification_dataset, segmentation_dataset

    if task not in TASKS:
        raise UsageError(f"{OWNER}: option task={task!r}{did_you_mean(task, TASKS)}; valid: {', '.join(TASKS)}")
    check_fractions(OWNER, validation=validation, test=test)
    check_range(OWNER, "size", size, 8, 256)
    check_range(OWNER, "noise", noise, 0, 1, what="a number")
    check_samples(OWNER, samples, len(CLASS_NAMES), validation, test)
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(samples) % len(CLASS_NAMES)).astype("int32")
    coverage = draw(y, size, rng)
    x = np.clip(coverage + rng.normal(0, noise, coverage.shape), 0, 1).astype("float32")[..., None]
    if task == "segmentation":
        masks = np.where(coverage >= 0.5, y[:, None, None] + 1, 0).astype("int32")
        return segmentation_dataset(x, masks, y, ("background", *CLASS_NAMES), validation, test, seed)
    return classification_dataset(x, y, CLASS_NAMES, validation, test, seed)


def draw(y, size, rng):
    """One (size, size) image per label in ``y``: 1 inside the shape, 0 outside, edges in between."""
    import numpy as np

    n = len(y)
    sides = np.array(SIDES)[y]
    area = rng.uniform(*AREA, n) * size**2
    # Circumradius giving that area: pi r^2 for a circle, k/2 r^2 sin(2 pi/k) for a regular k-gon.
    polygon = np.where(sides > 0, sides / 2 * np.sin(2 * np.pi / np.maximum(sides, 1)), np.pi)
    radius = np.sqrt(area / polygon)
    # Keep the whole shape inside the image, whatever its rotation.
    center = rng.uniform(radius[:, None], size - radius[:, None], (n, 2))
    rotation = rng.uniform(0, 2 * np.pi, n)

    grid = np.arange(size) + 0.5
    dy = grid[None, :, None] - center[:, 0, None, None]
    dx = grid[None, None, :] - center[:, 1, None, None]
    distance = np.sqrt(dx**2 + dy**2) - radius[:, None, None]  # signed distance to the circle
    for k in set(SIDES) - {0}:
        # Inside a regular k-gon: the projection on every edge's normal is at most the apothem.
        rows = sides == k
        normals = rotation[rows, None] + np.pi / k + 2 * np.pi * np.arange(k) / k
        projection = (
            dx[rows, :, :, None] * np.cos(normals)[:, None, None, :]
            + dy[rows, :, :, None] * np.sin(normals)[:, None, None, :]
        )
        apothem = radius[rows] * np.cos(np.pi / k)
        distance[rows] = projection.max(axis=-1) - apothem[:, None, None]
    # Coverage of a pixel by the shape, approximated from the distance of its centre to the edge.
    return np.clip(0.5 - distance, 0, 1)
