"""``shapes``: synthetic grayscale circles, squares and triangles, drawn with numpy (no download);
a class per image, or (``task=segmentation``) a class per pixel, or (``task=detection``) several
shapes per image and their labelled boxes."""

from core import hookimpl

OWNER = "dataset 'shapes'"

CLASS_NAMES = ("circle", "square", "triangle")
TASKS = ("classification", "segmentation", "detection")
SIDES = (0, 4, 3)  # per class; 0 means a circle
AREA = (0.08, 0.3)  # a shape covers this fraction of the image, whatever its class
DETECTION_AREA = (0.05, 0.12)  # the same with several shapes per image (task=detection)


@hookimpl
def register_datasets(register):
    register(
        "shapes",
        load,
        summary="synthetic grayscale circles, squares and triangles (16x16), 3 classes; task=segmentation: masks; task=detection: boxes",
    )


def load(samples=1500, size=16, noise=0.05, seed=0, validation=0.15, test=0.15, task="classification", boxes=3):
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
    if task == "detection":
        check_range(OWNER, "boxes", boxes, 1, 10)
        return _detection(samples, size, noise, seed, validation, test, boxes, rng)
    y = rng.permutation(np.arange(samples) % len(CLASS_NAMES)).astype("int32")
    coverage = draw(y, size, rng)
    x = np.clip(coverage + rng.normal(0, noise, coverage.shape), 0, 1).astype("float32")[..., None]
    if task == "segmentation":
        masks = np.where(coverage >= 0.5, y[:, None, None] + 1, 0).astype("int32")
        return segmentation_dataset(x, masks, y, ("background", *CLASS_NAMES), validation, test, seed)
    return classification_dataset(x, y, CLASS_NAMES, validation, test, seed)


def _detection(samples, size, noise, seed, validation, test, most, rng):
    """A detection Dataset: 1 to ``most`` shapes per image, their boxes apart (see ``load``)."""
    import numpy as np

    from core import Dataset
    from plugins.datasets._split import split_arrays
    from plugins.tasks._boxes import pad_boxes

    counts = rng.integers(1, most + 1, samples)
    canvas = np.zeros((samples, size, size))
    boxes, classes = [[] for _ in range(samples)], [[] for _ in range(samples)]
    for _ in range(8):  # rounds of candidates; one that touches a box already drawn is dropped
        wanted = np.array([len(c) < k for c, k in zip(classes, counts)])
        if not wanted.any():
            break
        labels = rng.integers(0, len(CLASS_NAMES), int(wanted.sum()))
        for i, label, coverage in zip(np.flatnonzero(wanted), labels, draw(labels, size, rng, DETECTION_AREA)):
            rows, cols = np.nonzero(coverage >= 0.5)
            box = np.array([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]) / size
            if any(_touch(box, other, 1 / size) for other in boxes[i]):
                continue
            canvas[i] = np.maximum(canvas[i], coverage)
            boxes[i].append(box)
            classes[i].append(int(label))
    y = pad_boxes(boxes, classes, most)
    x = np.clip(canvas + rng.normal(0, noise, canvas.shape), 0, 1).astype("float32")[..., None]
    strata = np.array([len(c) for c in classes])
    splits = split_arrays(np.arange(samples), strata, validation, test, seed)
    train, val, tst = (None if s is None else (x[s[0]], y[s[0]]) for s in splits)
    return Dataset(train=train, validation=val, test=tst, task="detection", class_names=CLASS_NAMES)


def _touch(a, b, margin):
    """Whether boxes ``a`` and ``b`` (xyxy) come within ``margin`` of each other."""
    return a[0] < b[2] + margin and b[0] < a[2] + margin and a[1] < b[3] + margin and b[1] < a[3] + margin


def draw(y, size, rng, areas=AREA):
    """One (size, size) image per label in ``y``: 1 inside the shape, 0 outside, edges in between;
    the shape covers a fraction of the image drawn from ``areas``."""
    import numpy as np

    n = len(y)
    sides = np.array(SIDES)[y]
    area = rng.uniform(*areas, n) * size**2
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
