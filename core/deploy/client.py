"""``verify --client mediapipe``: the .tflite run by an app's runtime (MediaPipe Tasks), beside LiteRT.

An app hands MediaPipe what it has (8-bit RGB pixels, a raw string) and MediaPipe prepares the
model's input from the file's standard metadata alone. This runs the run's evaluation split both
ways: through MediaPipe from pixels or text, and through kerastack's LiteRT runner (``tflite/``)
from the split's own inputs, and counts where the top-1 class (a classifier) or the pixel's class
(a segmenter's category mask) agree. A detector's boxes are compared by its task's scorer (LiteRT's
boxes in the reference's place): the share of LiteRT's boxes (score 0.25 or more) that MediaPipe
returns too, of the same class at IoU 0.9 or more (LiteRT's boxes put in whole pixels as MediaPipe
gives them), and each side's mAP.
"""

from pathlib import Path
from typing import Any

import numpy as np

from core.data import batches as iter_batches
from core.deploy.export import load_dataset
from core.errors import KerastackError, UsageError
from core.files import StrPath
from core.plugins import get_plugin_host
from core.runs import load_run
from core.task import task_named

CLIENTS = ("litert", "mediapipe")
BATCH = 64


def check_client(tflite_path: StrPath, run_dir: StrPath, client: str = "mediapipe", plugins=None) -> dict[str, Any]:
    """``{"file", "client", "client_task", "split", "samples", "unit", "compared", "agreement",
    "client_accuracy", "tflite_accuracy"}``: MediaPipe Tasks and LiteRT on the run's evaluation
    split; a detector's has ``client_map50``, ``tflite_map50``, ``client_map`` and ``tflite_map``
    instead of the accuracies, and ``compared`` counts LiteRT's boxes."""
    from tflite.mediapipe_client import MediaPipeClient, padded, pixel_boxes, pixels, texts
    from tflite.runner import TFLiteModel, load_metadata

    if client != "mediapipe":
        raise UsageError(f"--client {client!r} is not one of {', '.join(CLIENTS)}")
    path = Path(tflite_path)
    run = load_run(run_dir)
    try:
        lite = TFLiteModel(path)
        meta = load_metadata(path) or {}
        app = MediaPipeClient(path, meta)
    except (OSError, ValueError) as exc:
        raise KerastackError(str(exc) if str(exc).startswith(str(path)) else f"{path}: {exc}") from None
    plugins = list(run.record.get("plugins", [])) if plugins is None else list(plugins)
    dataset = load_dataset(run, get_plugin_host(plugins))
    split_name, split = dataset.evaluation_split()
    standard = (meta.get("file") or {}).get("standard_metadata") or {}
    boxes = None
    if app.task == "ObjectDetector":  # the task's scorers, LiteRT as the reference, MediaPipe beside it:
        # each side's mAP from its own boxes; the agreement from LiteRT's boxes in MediaPipe's pixels
        task = task_named(dataset.task)
        boxes = [task.scorer(class_names=meta.get("class_names")) for _ in ("map", "agreement")]
    agree = total = right = lite_right = labelled = samples = 0
    with app:
        for x, y in iter_batches(split, BATCH):
            lite_out = np.asarray(lite.predict(x))
            if app.task == "TextClassifier":
                given = texts(x, meta["vocabulary"])
            elif app.task == "AudioClassifier":
                given = x  # the waveform itself, at the rate the metadata records
            else:
                given = pixels(x, standard["normalization_mean"], standard["normalization_std"])
                given = np.repeat(given, 3, -1) if given.shape[-1] == 1 else given
            if boxes is not None:
                height, width = np.shape(x)[1:3]
                found = padded(app.predict(given), lite_out.shape[1])
                boxes[0].add(x, y, lite_out, found)
                boxes[1].add(x, y, pixel_boxes(lite_out, height, width), found)
                samples += len(x)
                continue
            lite_out = lite_out.argmax(-1)
            found = np.asarray(app.predict(given)).reshape(lite_out.shape)
            samples += len(x)
            agree += int(np.sum(found == lite_out))
            total += int(lite_out.size)
            if y is not None:
                truth = np.asarray(y).reshape(lite_out.shape)
                right += int(np.sum(found == truth))
                lite_right += int(np.sum(lite_out == truth))
                labelled += int(truth.size)
    if boxes is not None:
        maps, alike = (scorer.result(runtime="client") for scorer in boxes)
        return _boxes_result(path, client, app.task, split_name, samples, maps, alike)
    if not total:
        raise KerastackError(f"the {split_name} split of run {run.path} is empty")
    result = {
        "file": str(path),
        "client": client,
        "client_task": app.task,
        "split": split_name,
        "samples": samples,
        "unit": "pixel" if app.task == "ImageSegmenter" else "sample",
        "compared": total,
        "agreement": agree / total,
    }
    if labelled:
        result.update(client_accuracy=right / labelled, tflite_accuracy=lite_right / labelled)
    return result


def _boxes_result(path, client, task, split_name, samples, maps, alike):
    """A detector's result from its task's scorers, LiteRT in the reference's place (``keras_``):
    ``maps`` scored each side's own boxes, ``alike`` LiteRT's in MediaPipe's pixels."""
    if not samples:
        raise KerastackError(f"the {split_name} split is empty")
    result = {
        "file": str(path),
        "client": client,
        "client_task": task,
        "split": split_name,
        "samples": samples,
        "unit": "box",
        "compared": int(alike.get("matched_boxes", 0)),
        "agreement": alike.get("agreement", 1.0),
    }
    for name in ("map50", "map"):
        if f"client_{name}" in maps:  # the split has targets
            result.update({f"client_{name}": maps[f"client_{name}"], f"tflite_{name}": maps[f"keras_{name}"]})
    return result


def format_client_row(r: dict[str, Any]) -> str:
    """One line: the file, the client, the split and the agreement with LiteRT."""
    parts = [r["file"].rsplit("/", 1)[-1], f"{r['client']} {r['client_task']}", f"{r['split']} n={r['samples']}"]
    if r["unit"] == "box":
        parts.append(f"LiteRT's boxes (score >= 0.25, {r['compared']}) found alike {r['agreement']:.4f}")
    else:
        parts.append(f"{r['unit']}s agreeing with LiteRT {r['agreement']:.4f}")
    if "client_accuracy" in r:
        parts.append(f"accuracy {r['client']} {r['client_accuracy']:.4f} litert {r['tflite_accuracy']:.4f}")
    if "client_map50" in r:
        parts.append(f"mAP@0.5 {r['client']} {r['client_map50']:.4f} litert {r['tflite_map50']:.4f}")
    return "  ".join(parts)
