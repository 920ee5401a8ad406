"""``yolo_folder``: images and their boxes in Ultralytics' YOLO layout, read from disk.

Each image ``.../images/.../NAME.jpg`` has a label file ``.../labels/.../NAME.txt`` (the last
``images`` folder of its path read as ``labels``, as Ultralytics finds them), a box a line:
``class cx cy w h``, the centre and size relative to the image (0 to 1). A polygon line (``class x1 y1
x2 y2 ...``, Ultralytics' segmentation labels) counts as the box around it. An empty label file, or
none, is an image without objects.

Splits, as Ultralytics has them: ``data.yaml``'s ``train``, ``val`` and ``test`` (a folder of
images, a text file listing images, or a list of those; relative to its ``path``, else to the
yaml's folder); without them the folders ``images/train``, ``images/val`` (or ``valid``),
``images/test``, or Roboflow's ``train/images``, ``valid/images``, ``test/images``; else all of
``images/``, cut into splits by the ``validation`` and ``test`` shares.
"""

from core import hookimpl

OWNER = "dataset 'yolo_folder'"
IMAGES = (".png", ".jpg", ".jpeg")
YAML_FILES = ("data.yaml", "data.yml", "dataset.yaml")
NAMES_FILES = ("classes.txt", "obj.names")  # a name a line: darknet's and labelImg's names files
SPLITS = {"train": ("train",), "validation": ("val", "valid"), "test": ("test",)}


@hookimpl
def register_datasets(register):
    register(
        "yolo_folder",
        load,
        summary="your own images/ and labels/ in Ultralytics' YOLO layout, with data.yaml, for detection "
        "(--data-opt path=DIR)",
    )


def load(path="", classes="", size=64, channels=3, max_boxes=0, validation=0.15, test=0.15, seed=0):
    """Splits of arrays: images float32 in [0, 1], shape (size, size, channels), resized bilinearly
    (grayscale for ``channels=1``; boxes are relative, so they keep their place); targets float32
    (N, max_boxes, 5): ``x_min, y_min, x_max, y_max`` relative (Keras's ``rel_xyxy``) and the class
    id, padding rows of class -1. ``max_boxes`` 0: the most any image holds.

    ``path`` is the dataset's folder or its ``data.yaml``. Class names: ``classes`` (comma-separated,
    in id order), else ``data.yaml``'s ``names`` (a list, or a mapping of id to name), else
    ``classes.txt`` or ``obj.names`` (a name a line), else the ids found (``0``, ``1``, ...).

    A label line that is not ``class`` and four (or an even number of) numbers, or whose class is
    not one of the classes, is an error naming the file and line. A box reaching outside its image
    is clipped to it; one of zero or negative area, or wholly outside, is dropped: each counted in
    a warning line naming the first. Splits come from the folders (see the module doc) as they are;
    where the folders give only training images, ``validation`` and ``test`` shares of them are cut
    off (not stratified, fixed by ``seed``). The whole dataset is read into memory, so ``--augment`` applies to it
    (boxes move with their images).
    """
    import numpy as np

    from plugins.datasets._detection import Boxes, check_detection_options, detection_dataset
    from plugins.datasets._hub import check_image_options
    from plugins.datasets._images import read_image

    check_image_options(OWNER, size, channels)
    check_detection_options(OWNER, max_boxes)
    root, config = find_root(path)
    folders = split_folders(root, config)
    names = class_names(root, config, classes)
    files, parts = [], []
    for split in SPLITS:
        found = images_of(folders.get(split, []), root, split)
        parts.append(np.arange(len(files), len(files) + len(found)) if found else None)
        files += found
    if parts[0] is None:
        raise _error(f"{root}: no training images found{_looked(root, folders)}")
    boxes = Boxes("yolo_folder", "rel_center_xywh")
    read_labels(files, boxes, names)
    if names is None:
        names = tuple(str(i) for i in range(max(boxes.classes, default=0) + 1))
    x = np.stack([read_image(file, size, channels, OWNER) for file in files])
    y = boxes.targets(len(files), max_boxes)
    if parts[1] is None and parts[2] is None:  # one folder of images: the shares are cut from it
        from plugins.datasets._files import split_indices

        parts = split_indices(len(files), {"validation": validation, "test": test}, seed, OWNER, "images")
    return detection_dataset(x, y, names, splits=parts, owner=OWNER)


def find_root(path):
    """``(root, config)``: the dataset folder and its data.yaml's contents (a dict, maybe empty).
    ``path`` is the folder or the yaml file; a yaml's ``path`` key moves the root."""
    from pathlib import Path

    from core import UsageError

    if not path:
        raise UsageError(
            f"{OWNER}: option path is not set; give the folder of images/ and labels/ (or its data.yaml) "
            "with --data-opt path=DIR"
        )
    given = Path(path).expanduser()
    if not given.exists():
        raise UsageError(f"{OWNER}: option path={path!r}: no such file or folder")
    if given.is_file():
        yaml_file = given
    else:
        yaml_file = next((given / n for n in YAML_FILES if (given / n).is_file()), None)
    config = read_yaml(yaml_file) if yaml_file else {}
    root = yaml_file.parent if yaml_file else given
    if config.get("path"):  # Ultralytics reads a relative one under its datasets folder: kept only if it is here
        moved = Path(str(config["path"])).expanduser()
        moved = moved if moved.is_absolute() else root / moved
        root = moved if moved.is_dir() else root
    return root, config


def read_yaml(file):
    """A data.yaml's mapping; an error naming the file where it is not YAML or not a mapping."""
    import yaml

    try:
        config = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise _error(f"cannot read {file}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise _error(f"{file}{line}: not YAML ({problem})") from None
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise _error(f"{file}: expected a mapping (path, train, val, names), got {type(config).__name__}")
    config["_file"] = file
    return config


def split_folders(root, config):
    """``{split: [image folders or list files]}``: data.yaml's train/val/test, else the layouts of
    the module doc."""

    keyed = {split: config.get(keys[0]) or (config.get(keys[1]) if len(keys) > 1 else None)
             for split, keys in SPLITS.items()}  # fmt: skip
    if any(keyed.values()):
        out = {}
        for split, entry in keyed.items():
            entries = entry if isinstance(entry, list) else [entry] if entry else []
            out[split] = [_under(root, str(e)) for e in entries]
        return out
    for layout in (lambda s: root / "images" / s, lambda s: root / s / "images"):
        found = {split: [layout(k) for k in keys if layout(k).is_dir()][:1] for split, keys in SPLITS.items()}
        if found["train"]:
            return found
    return {"train": [root / "images"]}


def _under(root, entry):
    """A data.yaml split entry as a path: absolute, else under ``root``; Roboflow's exports write
    ``../train/images`` meaning ``train/images`` (Ultralytics drops the ``../`` too when that exists)."""
    from pathlib import Path

    path = Path(entry).expanduser()
    if path.is_absolute():
        return path
    if not (root / path).exists() and entry.startswith("../") and (root / entry[3:]).exists():
        return root / entry[3:]
    return root / path


def images_of(entries, root, split):
    """The images of a split's entries (folders searched recursively, or list files of image paths
    a line), sorted within each; hidden files skipped."""
    from pathlib import Path

    files = []
    for entry in entries:
        if entry.is_dir():
            files += sorted(
                p
                for p in entry.rglob("*")
                if p.suffix.lower() in IMAGES
                and p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(entry).parts)
            )
        elif entry.is_file() and entry.suffix.lower() == ".txt":
            for number, line in enumerate(entry.read_text(encoding="utf-8").splitlines(), 1):
                if line.strip():
                    image = Path(line.strip()).expanduser()
                    image = (
                        image
                        if image.is_absolute()
                        else (root / image if (root / image).exists() else entry.parent / image)
                    )
                    if not image.is_file():
                        raise _error(f"{entry} line {number}: no such image {line.strip()!r} ({image})")
                    files.append(image)
        else:
            raise _error(f"the {split} split's {entry}: no such folder of images (nor a .txt list of them)")
    return files


def label_file(image):
    """Ultralytics' rule: the last ``images`` folder of the path becomes ``labels``, the suffix ``.txt``."""
    parts = list(image.parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            break
    else:
        return None
    from pathlib import Path

    return Path(*parts).with_suffix(".txt")


def read_labels(files, boxes, names):
    """Each image's label file into ``boxes``; errors name the file and line. Images without a label
    file are images without objects, said in one note; none at all is an error."""
    from plugins.datasets._files import note

    missing = []
    for index, image in enumerate(files):
        file = label_file(image)
        if file is None or not file.is_file():
            missing.append(file or image)
            continue
        for number, line in enumerate(_lines(file), 1):
            fields = line.split()
            if not fields:
                continue
            cls, box = parse_line(fields, file, number)
            if names is not None and cls >= len(names):
                raise _error(
                    f"{file} line {number}: class {cls} is not one of the {len(names)} classes "
                    f"({_listed(names)}: 0..{len(names) - 1})"
                )
            boxes.add(index, box, cls, f"{file} line {number}")
    if len(missing) == len(files):
        raise _error(
            f"no label file for any of the {len(files)} images: expected {missing[0]} for {files[0]} "
            "(a .txt of 'class cx cy w h' lines beside images/, in labels/)"
        )
    if missing:
        note("yolo_folder", f"{len(missing)} of {len(files)} images have no label file (the first: {missing[0]}): "
                            "taken as images without objects")  # fmt: skip


def parse_line(fields, file, number):
    """``(class id, (cx, cy, w, h))`` of one label line; a polygon gives the box around it."""
    import math

    if len(fields) < 5 or (len(fields) > 5 and len(fields) % 2 == 0):
        raise _error(
            f"{file} line {number}: {len(fields)} fields; expected 'class cx cy w h' (5), or 'class x1 y1 x2 y2 ...' "
            f"(a polygon): {' '.join(fields)[:80]!r}"
        )
    try:
        cls = float(fields[0])
        values = [float(f) for f in fields[1:]]
    except ValueError:
        raise _error(f"{file} line {number}: not numbers: {' '.join(fields)[:80]!r}") from None
    if cls != int(cls) or cls < 0:
        raise _error(f"{file} line {number}: class {fields[0]!r} is not a class id (an integer from 0)")
    if not all(math.isfinite(v) for v in values):
        raise _error(f"{file} line {number}: not finite numbers: {' '.join(fields)[:80]!r}")
    if len(values) == 4:
        return int(cls), values
    xs, ys = values[0::2], values[1::2]
    left, top, right, bottom = min(xs), min(ys), max(xs), max(ys)
    return int(cls), [(left + right) / 2, (top + bottom) / 2, right - left, bottom - top]


def class_names(root, config, classes):
    """The class names from ``classes``, else data.yaml's ``names``, else a names file, else None."""
    if classes:
        return _distinct(tuple(c.strip() for c in str(classes).split(",")), "option classes")
    if "names" in config:
        return yaml_names(config["names"], config["_file"])
    for name in NAMES_FILES:
        file = root / name
        if file.is_file():
            return _distinct(tuple(line.strip() for line in _lines(file) if line.strip()), str(file))
    return None


def yaml_names(names, file):
    """data.yaml's ``names``: a list, or a mapping of ids 0..n-1 to names."""
    if isinstance(names, dict):
        try:
            ids = sorted(int(k) for k in names)
        except (TypeError, ValueError):
            raise _error(f"{file}: names: expected ids 0, 1, ... as keys, got {list(names)[:5]}") from None
        if ids != list(range(len(ids))):
            raise _error(f"{file}: names: ids must run 0..{len(ids) - 1} without gaps, got {ids[:10]}")
        names = [names.get(i, names.get(str(i))) for i in ids]
    if not isinstance(names, list):
        raise _error(f"{file}: names: expected a list or a mapping of id to name, got {type(names).__name__}")
    return _distinct(tuple(str(n).strip() for n in names), f"{file}: names")


def _distinct(names, where):
    if not names or "" in names or len(set(names)) != len(names):
        raise _error(f"{where}: class names must be distinct and not empty, got {', '.join(names) or 'none'}")
    return names


def _lines(file):
    try:
        return file.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise _error(f"cannot read {file}: {exc}") from None


def _listed(names, shown=5):
    return ", ".join(names[:shown]) + (f", ... {len(names) - shown} more" if len(names) > shown else "")


def _looked(root, folders):
    where = [str(p) for entries in folders.values() for p in entries]
    return f" (looked in {', '.join(where)})" if where else f" (expected {root}/images/train or {root}/images)"


def _error(message):
    from core import KerastackError

    return KerastackError(f"{OWNER}: {message}")
