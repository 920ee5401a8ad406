"""``shapes``: image splits, determinism, and a class told by shape, not by brightness."""

import numpy as np
import pytest

from core import PluginHost, UsageError
from core.data import check_dataset, spec_of
from plugins.datasets import shapes


@pytest.fixture(scope="module")
def dataset():
    return shapes.load()


def splits(dataset):
    return dataset.train, dataset.validation, dataset.test


def test_registered_with_its_options_and_loads_through_the_host():
    host = PluginHost(["plugins.datasets.shapes"], builtins=(), entry_points=False, disabled=())
    entry = host.registry("dataset").get("shapes")
    assert entry.defaults == {
        "samples": 1500,
        "size": 16,
        "noise": 0.05,
        "seed": 0,
        "validation": 0.15,
        "test": 0.15,
        "task": "classification",
        "boxes": 3,
    }
    dataset = entry.call(**entry.options({"samples": "300", "size": "12"}))
    check_dataset(dataset, "shapes")
    spec = spec_of(dataset)
    assert spec.input_shape == (12, 12, 1) and spec.num_classes == 3
    assert spec.class_names == ("circle", "square", "triangle")


def test_splits_have_the_right_shapes_types_and_sizes(dataset):
    sizes = [len(x) for x, _ in splits(dataset)]
    assert sum(sizes) == 1500 and abs(sizes[1] - 225) <= 1 and abs(sizes[2] - 225) <= 1
    for x, y in splits(dataset):
        assert x.shape[1:] == (16, 16, 1) and x.dtype == np.float32
        assert x.min() >= 0 and x.max() <= 1
        assert y.dtype == np.int32 and set(np.unique(y)) == {0, 1, 2}
        counts = np.bincount(y)
        assert counts.max() - counts.min() <= 1


def test_every_image_holds_a_shape_inside_the_frame():
    x = shapes.load(samples=300, noise=0.0).train[0][..., 0]
    area = x.sum(axis=(1, 2)) / 16**2
    assert area.min() > 0.06 and area.max() < 0.32
    border = np.concatenate([x[:, 0], x[:, -1], x[:, :, 0], x[:, :, -1]], axis=1)
    assert border.max(axis=1).mean() < 0.5


def test_noise_option_adds_noise():
    clean = shapes.load(samples=300, noise=0.0).train[0]
    noisy = shapes.load(samples=300, noise=0.2).train[0]
    background = clean == 0
    assert noisy[background].std() > 0.05 and clean[background].std() == 0


def test_same_seed_same_images_other_seed_other_images(dataset):
    again, other = shapes.load(), shapes.load(seed=1)
    np.testing.assert_array_equal(dataset.train[0], again.train[0])
    np.testing.assert_array_equal(dataset.test[1], again.test[1])
    assert not np.array_equal(dataset.train[0], other.train[0])


def test_learnable_from_shape_but_not_from_brightness(dataset):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    (x, y), (x_test, y_test) = dataset.train, dataset.test

    def brightness(images):
        return images.mean(axis=(1, 2, 3))[:, None]

    def spectrum(images):  # magnitude of the 2-D Fourier transform: the same wherever the shape sits
        return np.abs(np.fft.rfft2(images[..., 0])).reshape(len(images), -1)

    by_brightness = LogisticRegression().fit(brightness(x), y).score(brightness(x_test), y_test)
    by_shape = RandomForestClassifier(100, random_state=0).fit(spectrum(x), y).score(spectrum(x_test), y_test)
    assert by_brightness < 0.5, by_brightness
    assert by_shape >= 0.9, by_shape


def test_segmentation_masks_are_the_drawn_shapes_of_the_same_images(dataset):
    seg = shapes.load(task="segmentation")
    check_dataset(seg, "shapes")
    spec = spec_of(seg)
    assert (spec.task, spec.num_classes) == ("segmentation", 4)
    assert spec.class_names == ("background", "circle", "square", "triangle")
    for (x, y), (x_seg, masks) in zip(splits(dataset), splits(seg)):
        np.testing.assert_array_equal(x, x_seg)  # the same images, in the same splits
        assert masks.shape == x.shape[:3] and masks.dtype == np.int32
        kinds = masks.max(axis=(1, 2))
        np.testing.assert_array_equal(kinds, y + 1)  # each image's shape, labelled by its class
        assert set(np.unique(masks)) == {0, 1, 2, 3}
    clean_x, clean_masks = shapes.load(samples=300, noise=0.0, task="segmentation").train
    inside = clean_masks > 0
    assert clean_x[..., 0][inside].min() >= 0.5 and clean_x[..., 0][~inside].max() < 0.5
    assert 0.06 < inside.mean() < 0.32  # the shapes' area
    again = shapes.load(task="segmentation", seed=0).test[1]
    np.testing.assert_array_equal(again, seg.test[1])


@pytest.mark.parametrize(
    "options, match",
    [
        ({"size": 4}, "dataset 'shapes': option size=4: expected an integer in \\[8, 256\\]"),
        ({"noise": -0.1}, "option noise=-0.1: expected a number in \\[0, 1\\]"),
        ({"samples": 10}, "option samples=10: expected an integer at least 20 "),
        ({"validation": 0.6, "test": 0.4}, r"validation and test must be fractions in \[0, 1\) summing below 1"),
        (
            {"task": "segmentaton"},
            r"option task='segmentaton' \(did you mean 'segmentation'\?\); valid: classification, seg",
        ),
    ],
)
def test_bad_options_raise_naming_the_option(options, match):
    with pytest.raises(UsageError, match=match):
        shapes.load(**options)


def test_detection_boxes_enclose_their_shapes_apart():
    from plugins.tasks._boxes import check_boxes, unpad

    dataset = shapes.load(samples=120, size=32, noise=0.0, task="detection", boxes=3)
    assert dataset.task == "detection" and dataset.class_names == shapes.CLASS_NAMES
    x, y = dataset.train
    assert y.shape == (len(x), 3, 5) and y.dtype == np.float32 and check_boxes(y, 3) is None
    counts = (y[..., 4] >= 0).sum(1)
    assert counts.min() >= 1 and counts.max() == 3 and len(set(y[..., 4][y[..., 4] >= 0].tolist())) == 3
    for image, (boxes, _) in zip(x[..., 0], unpad(y)):
        inside = np.zeros(image.shape, bool)
        for x0, y0, x1, y1 in np.rint(boxes * 32).astype(int):
            assert not inside[y0:y1, x0:x1].any()  # boxes apart
            inside[y0:y1, x0:x1] = True
            assert image[y0:y1, x0:x1].max() >= 0.5  # a shape inside each box
        assert image[~inside].max() < 0.5  # and none outside them
    again = shapes.load(samples=120, size=32, noise=0.0, task="detection", boxes=3)
    np.testing.assert_array_equal(again.test[1], dataset.test[1])
