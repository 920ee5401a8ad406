"""``coco``: images and their boxes from a COCO instances JSON (``images``, ``annotations``,
``categories``; a box is ``[x, y, width, height]`` in pixels) and a folder of the images."""

from core import hookimpl

OWNER = "dataset 'coco'"


@hookimpl
def register_datasets(register):
    register(
        "coco",
        load,
        summary="a COCO instances JSON and its images for detection (--data-opt path=instances.json [images=DIR])",
    )


def load(path="", images="", test_path="", size=64, channels=3, max_boxes=0, validation=0.15, test=0.15, seed=0):
    """Splits of arrays: images float32 in [0, 1], shape (size, size, channels), resized bilinearly
    (grayscale for ``channels=1``); targets float32 (N, max_boxes, 5): ``x_min, y_min, x_max, y_max``
    relative to the image (Keras's ``rel_xyxy``) and the class id, padding rows of class -1.
    ``max_boxes`` 0: the most any image holds.

    ``path`` is the instances JSON; an image's ``file_name`` is looked for under ``images``, else
    beside the JSON, in ``images/`` there or beside its folder, or in the folder its name gives
    (``annotations/instances_val2017.json`` → ``val2017/``). Classes are the categories in order of
    their ids, renumbered 0, 1, ... and named by their names. Crowd annotations (``iscrowd`` 1) are
    skipped and counted, as COCO's evaluation ignores them; images without annotations are images
    without objects. With ``test_path`` (another instances JSON, e.g. val2017's), its images are the
    test split and only ``validation`` is cut from ``path``'s (not stratified, fixed by ``seed``).

    A JSON that is not COCO instances, an annotation naming an image or category that is not
    there or holding a bbox that is not four numbers, an image missing or of another size than the
    JSON says: one-line errors naming the file (and the annotation's id). A box reaching outside its
    image is clipped to it; one of zero or negative area, or wholly outside, is dropped: each counted
    in a warning naming the first. The whole dataset is read into memory, so ``--augment`` applies.
    """
    import numpy as np

    from plugins.datasets._detection import Boxes, check_detection_options, detection_dataset
    from plugins.datasets._files import existing_file, split_indices
    from plugins.datasets._hub import check_image_options
    from plugins.datasets._images import read_image

    check_image_options(OWNER, size, channels)
    check_detection_options(OWNER, max_boxes)
    main = existing_file(path, "path", OWNER, "COCO instances JSON")
    boxes = Boxes("coco", "xywh")
    files, categories = read_instances(main, images, boxes, 0)
    names = tuple(categories.values())
    n_main = len(files)
    if test_path:
        other = existing_file(test_path, "test_path", OWNER, "COCO instances JSON")
        more, _ = read_instances(other, "", boxes, n_main, categories)
        files += more
    x = np.stack([read_image(file, size, channels, OWNER) for file in files])
    y = boxes.targets(len(files), max_boxes)
    if test_path:
        train, val = split_indices(n_main, {"validation": validation}, seed, OWNER, "images")
        parts = (train, val, np.arange(n_main, len(files)))
    else:
        parts = split_indices(n_main, {"validation": validation, "test": test}, seed, OWNER, "images")
    return detection_dataset(x, y, names, splits=parts, owner=OWNER)


def read_instances(file, images, boxes, offset, categories=None):
    """``(image files, {category id: name})`` of one instances JSON, its boxes added to ``boxes``
    (image numbers from ``offset``). ``categories`` (the first JSON's): this one's must be the same."""
    from plugins.datasets._files import note

    coco = read_json(file)
    own = category_names(coco, file)
    if categories is not None and own != categories:
        raise _error(
            f"{file}: its categories differ from those of option path's JSON ({_pairs(own)} vs {_pairs(categories)})"
        )
    entries = image_entries(coco, file)
    files = image_files(entries, file, images)
    sizes = [check_size(image, entry, file) for image, entry in zip(files, entries)]
    index = {entry["id"]: i for i, entry in enumerate(entries)}
    number = {cid: i for i, cid in enumerate(own)}
    crowd = 0
    for k, ann in enumerate(coco["annotations"]):
        where = f"{file} annotation {ann.get('id', f'#{k}') if isinstance(ann, dict) else f'#{k}'}"
        if not isinstance(ann, dict) or "image_id" not in ann or "category_id" not in ann or "bbox" not in ann:
            raise _error(f"{where}: expected an object with image_id, category_id and bbox")
        if ann.get("iscrowd"):
            crowd += 1
            continue
        if ann["image_id"] not in index:
            raise _error(f"{where}: image_id {ann['image_id']!r} is not one of the {len(index)} images")
        if ann["category_id"] not in number:
            raise _error(f"{where}: category_id {ann['category_id']!r} is not one of the categories ({_pairs(own)})")
        bbox = ann["bbox"]
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(_finite(v) for v in bbox)):
            raise _error(f"{where}: bbox {bbox!r} is not [x, y, width, height] (four numbers, in pixels)")
        i = index[ann["image_id"]]
        width, height = sizes[i]
        boxes.add(offset + i, [float(v) for v in bbox], number[ann["category_id"]], where, width, height)
    if crowd:
        note("coco", f"skipped {crowd} crowd annotations (iscrowd 1) of {file}, as COCO's evaluation does")
    return files, own


def read_json(file):
    import json

    try:
        coco = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise _error(f"cannot read {file}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise _error(f"{file} line {exc.lineno}: not JSON ({exc.msg})") from None
    if not isinstance(coco, dict) or any(
        not isinstance(coco.get(k), list) for k in ("images", "annotations", "categories")
    ):
        keys = ", ".join(map(str, coco)) if isinstance(coco, dict) else type(coco).__name__
        raise _error(
            f"{file} is not COCO instances: expected lists 'images', 'annotations' and 'categories' (it has {keys})"
        )
    return coco


def category_names(coco, file):
    """``{category id: name}`` in order of the ids; names distinct."""
    cats = coco["categories"]
    if not cats or any(not isinstance(c, dict) or "id" not in c or "name" not in c for c in cats):
        raise _error(f"{file}: categories must be a non-empty list of objects with id and name")
    try:
        ordered = sorted(cats, key=lambda c: c["id"])
    except TypeError:
        raise _error(f"{file}: category ids must be numbers") from None
    names = {c["id"]: str(c["name"]).strip() for c in ordered}
    if len(names) != len(cats) or "" in names.values() or len(set(names.values())) != len(names):
        raise _error(f"{file}: categories must have distinct ids and distinct, non-empty names ({_pairs(names)})")
    return names


def image_entries(coco, file):
    entries = coco["images"]
    if not entries:
        raise _error(f"{file} lists no images")
    for k, entry in enumerate(entries):
        if not isinstance(entry, dict) or "id" not in entry or not entry.get("file_name"):
            raise _error(f"{file} image #{k}: expected an object with id and file_name")
    if len({e["id"] for e in entries}) != len(entries):
        raise _error(f"{file}: image ids are not distinct")
    return entries


def image_files(entries, file, images):
    """The image files of ``entries``, in the first folder (see ``load``) holding the first one."""
    from pathlib import Path

    here = file.parent
    stem = file.stem.removeprefix("instances_")
    folders = [Path(images).expanduser()] if images else []
    folders += [here, here / "images", here.parent / "images", here.parent / stem, here / stem]
    first = entries[0]["file_name"]
    folder = next((f for f in folders if (f / first).is_file()), None)
    if folder is None:
        looked = ", ".join(str(f) for f in dict.fromkeys(folders))
        raise _error(f"{file}: image {first!r} is in none of {looked}; give --data-opt images=DIR")
    files = [folder / e["file_name"] for e in entries]
    missing = [f for f in files if not f.is_file()]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise _error(f"{file}: image {missing[0]} is missing{more}")
    return files


def check_size(image, entry, file):
    """The image's ``(width, height)``; its file's, checked against the JSON's where given."""
    from plugins.datasets._images import check_image

    dimensions = check_image(image, OWNER)
    said = entry.get("width"), entry.get("height")
    if said != (None, None) and tuple(said) != tuple(dimensions):
        raise _error(
            f"{file}: image {image} is {dimensions[0]}x{dimensions[1]} but the JSON says {said[0]}x{said[1]} "
            "(its boxes are in those pixels)"
        )
    return dimensions


def _finite(v):
    import math

    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _pairs(names, shown=6):
    items = [f"{k}: {v}" for k, v in names.items()]
    return ", ".join(items[:shown]) + (f", ... {len(items) - shown} more" if len(items) > shown else "")


def _error(message):
    from core import KerastackError

    return KerastackError(f"{OWNER}: {message}")
