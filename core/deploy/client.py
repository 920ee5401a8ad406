"""``verify --client mediapipe``: the .tflite run by an app's runtime (MediaPipe Tasks), beside LiteRT.

An app hands MediaPipe what it has (8-bit RGB pixels, a raw string) and MediaPipe prepares the
model's input from the file's standard metadata alone. This runs the run's evaluation split both
ways: through MediaPipe from pixels or text, and through kerastack's LiteRT runner (``tflite/``)
from the split's own inputs, and counts where the top-1 class (a classifier) or the pixel's class
(a segmenter's category mask) agree.
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

CLIENTS = ("litert", "mediapipe")
BATCH = 64


def check_client(tflite_path: StrPath, run_dir: StrPath, client: str = "mediapipe", plugins=None) -> dict[str, Any]:
    """``{"file", "client", "client_task", "split", "samples", "agreement", "client_accuracy",
    "tflite_accuracy", "unit"}``: MediaPipe Tasks and LiteRT on the run's evaluation split."""
    from tflite.mediapipe_client import MediaPipeClient, pixels, texts
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
    split_name, split = load_dataset(run, get_plugin_host(plugins)).evaluation_split()
    standard = (meta.get("file") or {}).get("standard_metadata") or {}
    agree = total = right = lite_right = labelled = samples = 0
    with app:
        for x, y in iter_batches(split, BATCH):
            lite_out = np.asarray(lite.predict(x)).argmax(-1)
            if app.task == "TextClassifier":
                given = texts(x, meta["vocabulary"])
            elif app.task == "AudioClassifier":
                given = x  # the waveform itself, at the rate the metadata records
            else:
                given = pixels(x, standard["normalization_mean"], standard["normalization_std"])
                given = np.repeat(given, 3, -1) if given.shape[-1] == 1 else given
            found = np.asarray(app.predict(given)).reshape(lite_out.shape)
            samples += len(x)
            agree += int(np.sum(found == lite_out))
            total += int(lite_out.size)
            if y is not None:
                truth = np.asarray(y).reshape(lite_out.shape)
                right += int(np.sum(found == truth))
                lite_right += int(np.sum(lite_out == truth))
                labelled += int(truth.size)
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


def format_client_row(r: dict[str, Any]) -> str:
    """One line: the file, the client, the split and the agreement with LiteRT."""
    parts = [r["file"].rsplit("/", 1)[-1], f"{r['client']} {r['client_task']}", f"{r['split']} n={r['samples']}"]
    parts.append(f"{r['unit']}s agreeing with LiteRT {r['agreement']:.4f}")
    if "client_accuracy" in r:
        parts.append(f"accuracy {r['client']} {r['client_accuracy']:.4f} litert {r['tflite_accuracy']:.4f}")
    return "  ".join(parts)
