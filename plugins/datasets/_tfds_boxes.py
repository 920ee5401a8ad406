"""``tfds`` with ``boxes``: the box feature of a TFDS dataset (a ``BBoxFeature`` in a ``Sequence``,
as ``objects/bbox`` in voc, coco, kitti) as detection targets (see ``tfds.load``). Not a plugin
(the leading ``_``).

TFDS keeps boxes relative, ``[ymin, xmin, ymax, xmax]`` (Keras's ``rel_yxyx``). Before training,
one pass over each split reads the boxes with the images left undecoded, so that they are checked
and padded at once (``_detection.Boxes``); the stream then reads images and finds each example's
boxes by its TFDS id.
"""

OWNER = "dataset 'tfds'"


def box_features(info, boxes, label, name):
    """``(box path, label path)``: ``(feature, field)`` pairs (field None for a top-level feature),
    the box one a ``BBoxFeature``; the label unset: the ``ClassLabel`` beside it."""
    import tensorflow_datasets as tfds

    from plugins.datasets._detection import inner_field
    from plugins.datasets._hub import field

    top, _, inner = boxes.partition("/")
    field(OWNER, "boxes", top, sorted(info.features), "feature", name)
    feature = info.features[top]
    siblings = _fields(feature)
    if inner:
        if siblings is None:
            raise _usage(f"option boxes={boxes!r}: feature {top!r} of {name} holds no fields ({_described(info)})")
        inner_field(OWNER, "boxes", boxes, sorted(siblings.keys()), f"feature {top!r} of {name}")
        feature = siblings[inner]
    feature = getattr(feature, "feature", feature)  # a Sequence of boxes
    if not isinstance(feature, tfds.features.BBoxFeature):
        raise _usage(
            f"option boxes={boxes!r}: {boxes!r} of {name} is {type(feature).__name__}, not a BBoxFeature "
            f"({_described(info)})"
        )
    if label:
        lab_top, _, lab_inner = label.partition("/")
        field(OWNER, "label", lab_top, sorted(info.features), "feature", name)
        chosen = info.features[lab_top]
        if lab_inner:
            fields = sorted((_fields(chosen) or {}).keys())
            inner_field(OWNER, "label", label, fields, f"feature {lab_top!r} of {name}")
            chosen = _fields(chosen)[lab_inner]
        if not isinstance(getattr(chosen, "feature", chosen), tfds.features.ClassLabel):
            raise _usage(f"option label={label!r}: {label!r} of {name} is not a ClassLabel ({_described(info)})")
        return (top, inner or None), (lab_top, lab_inner or None)
    pool = siblings if inner else info.features
    for key in pool.keys():  # noqa: SIM118 (a FeaturesDict)
        if key != (inner or top) and isinstance(getattr(pool[key], "feature", pool[key]), tfds.features.ClassLabel):
            return (top, inner or None), ((top, key) if inner else (key, None))
    raise _usage(
        f"option boxes={boxes!r}: no ClassLabel beside the boxes in {name} ({_described(info)}); "
        f"give --data-opt label={top + '/' if inner else ''}FEATURE"
    )


def class_names(info, label_path):
    top, inner = label_path
    feature = info.features[top] if inner is None else _fields(info.features[top])[inner]
    return tuple(getattr(feature, "feature", feature).names)


def read_boxes(builder, slices, image, box_path, label_path, max_boxes, name):
    """``(y, rows)``: the targets of every example of ``slices`` (TFDS split slices, in order), and
    each example's row in ``y`` by its TFDS id. Images are not decoded."""
    import numpy as np
    import tensorflow_datasets as tfds

    from plugins.datasets._detection import Boxes

    found, rows = Boxes("tfds", "rel_yxyx"), {}
    decoders = {image: tfds.decode.SkipDecoding()}
    for part in slices:
        if part is None:
            continue
        config = tfds.ReadConfig(add_tfds_id=True, try_autocache=False)
        ds = builder.as_dataset(split=part, shuffle_files=False, read_config=config, decoders=decoders)
        for example in tfds.as_numpy(ds):
            row = len(rows)
            rows[example["tfds_id"]] = row
            where = f"{name} {part} example {example['tfds_id'].decode()}"
            bboxes, labels = _get(example, box_path), _get(example, label_path)
            for k, (box, cls) in enumerate(zip(np.reshape(bboxes, (-1, 4)), np.reshape(labels, (-1,)))):
                found.add(row, [float(v) for v in box], int(cls), f"{where}, box {k}")
    return found.targets(len(rows), max_boxes), rows


def _get(example, path):
    top, inner = path
    return example[top] if inner is None else example[top][inner]


def _fields(feature):
    """The fields of a ``FeaturesDict`` (or a ``Sequence`` of one), else None."""
    import tensorflow_datasets as tfds

    inner = getattr(feature, "feature", feature)
    return inner if isinstance(inner, tfds.features.FeaturesDict) else None


def _described(info):
    return "features: " + ", ".join(f"{k} ({type(f).__name__})" for k, f in sorted(info.features.items()))


def _usage(message):
    from core import UsageError

    return UsageError(f"{OWNER}: {message}")
