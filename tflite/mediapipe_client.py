"""A kerastack .tflite run by MediaPipe Tasks, the API Android, iOS and Python apps load models with.

MediaPipe reads only the standard ``TFLITE_METADATA`` entry (image properties, normalization,
labels, the tokenizer, audio properties, a detector's boxes); this module picks the task its file fits
from kerastack's own entry (``output``: ``classes`` of an image, a text or a waveform, a ``mask``,
``boxes``) and hands it what an app has: 8-bit RGB pixels, raw strings, or float waveforms.
``kerastack verify --client mediapipe`` compares it with LiteRT.

ObjectDetector returns every detection the file gives (no score threshold, no cap: the file's own
non-max suppression already chose them) with boxes in whole pixels: the corner and the size each
truncated (MediaPipe's DetectionTransformationCalculator). ``pixel_boxes`` puts LiteRT's boxes on
the same grid, so that the two are compared box for box even on small images.

mediapipe is optional (``pip install kerastack[mediapipe]``); it is imported when a client is made.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["CLIENTS", "MediaPipeClient", "client_task"]

# kerastack's device output and input kind → the MediaPipe Tasks class that runs it.
CLIENTS = {
    ("classes", "image"): "ImageClassifier",
    ("classes", "text"): "TextClassifier",
    ("mask", "image"): "ImageSegmenter",
    ("classes", "audio"): "AudioClassifier",
    ("boxes", "image"): "ObjectDetector",
}


def client_task(metadata: dict) -> str:
    """The MediaPipe task a file's metadata fits (``CLIENTS``), or a ValueError saying why none."""
    entry = metadata.get("file") or {}
    kind = (entry.get("standard_metadata") or {}).get("input_kind")
    if kind is None:
        raise ValueError("the file has no standard metadata (exported by an older kerastack): export it again")
    task = CLIENTS.get((metadata.get("output"), kind))
    if task is None:
        valid = ", ".join(f"{k[1]} {k[0]} ({v})" for k, v in CLIENTS.items())
        raise ValueError(
            f"MediaPipe Tasks has no client for a {metadata.get('task')} model of {kind} inputs; valid: {valid}"
        )
    return task


class MediaPipeClient:
    """One MediaPipe task over the file at ``path``: ``predict(inputs)`` gives top-1 class ids
    (classifiers, one per input), category masks (the segmenter, one (H, W) array per image) or
    detections (the detector, one (k, 6) array of rows per image, as LiteRT's: ``ymin, xmin, ymax,
    xmax`` relative, ``class``, ``score``)."""

    def __init__(self, path: str | Path, metadata: dict):
        try:
            import mediapipe as mp
            from mediapipe.tasks.python import BaseOptions, audio, text, vision
        except ImportError:
            raise ValueError("mediapipe is not installed: pip install 'kerastack[mediapipe]'") from None
        self.mp, self.task = mp, client_task(metadata)
        self.class_names = list(metadata.get("class_names") or [])
        self.sample_rate = int((metadata.get("audio") or {}).get("sample_rate") or 0)
        base = BaseOptions(model_asset_path=str(path))
        try:
            if self.task == "ImageClassifier":
                options = vision.ImageClassifierOptions(base_options=base, max_results=1)
                self.runner = vision.ImageClassifier.create_from_options(options)
            elif self.task == "ImageSegmenter":
                options = vision.ImageSegmenterOptions(
                    base_options=base, output_category_mask=True, output_confidence_masks=False
                )
                self.runner = vision.ImageSegmenter.create_from_options(options)
            elif self.task == "ObjectDetector":
                # Everything the file returns: its graph already thresholded and capped the boxes.
                options = vision.ObjectDetectorOptions(base_options=base, max_results=-1, score_threshold=0.0)
                self.runner = vision.ObjectDetector.create_from_options(options)
            elif self.task == "AudioClassifier":
                options = audio.AudioClassifierOptions(base_options=base, max_results=1)
                self.runner = audio.AudioClassifier.create_from_options(options)
                from mediapipe.tasks.python.components.containers.audio_data import AudioData

                self.audio_data = AudioData  # waveforms go in as AudioData at the file's rate
            else:
                options = text.TextClassifierOptions(base_options=base, max_results=1)
                self.runner = text.TextClassifier.create_from_options(options)
        except (RuntimeError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ValueError(f"{path}: MediaPipe {self.task} refused the file: {first}") from None

    def predict(self, inputs) -> list:
        """Top-1 class ids (``ImageClassifier``: uint8 (H, W, 3) images; ``TextClassifier``: strings;
        ``AudioClassifier``: float waveforms at the model's sample rate, one clip each) or (H, W)
        category masks (``ImageSegmenter``)."""
        return [self._one(x) for x in inputs]

    def _one(self, x):
        if self.task == "TextClassifier":
            return self._top(self.runner.classify(x).classifications[0].categories)
        if self.task == "AudioClassifier":  # one result per clip-long window: a clip is one window
            clip = self.audio_data.create_from_array(np.asarray(x, dtype=np.float32).ravel(), self.sample_rate)
            return self._top(self.runner.classify(clip)[0].classifications[0].categories)
        image = self.mp.Image(image_format=self.mp.ImageFormat.SRGB, data=np.ascontiguousarray(x, dtype=np.uint8))
        if self.task == "ImageClassifier":
            return self._top(self.runner.classify(image).classifications[0].categories)
        if self.task == "ObjectDetector":
            return self._rows(self.runner.detect(image).detections, *x.shape[:2])
        return np.array(self.runner.segment(image).category_mask.numpy_view()).reshape(x.shape[:2])

    def _rows(self, detections, height, width):
        rows = np.zeros((len(detections), 6), np.float32)
        for row, found in zip(rows, detections):
            box, best = found.bounding_box, found.categories[0]
            row[:4] = (
                box.origin_y / height,
                box.origin_x / width,
                (box.origin_y + box.height) / height,
                (box.origin_x + box.width) / width,
            )
            row[4], row[5] = self._class_id(best), best.score
        return rows

    def _class_id(self, category):
        """A detection's class id: MediaPipe names it from the labels file (its ``index`` stays None)."""
        if category.index is not None:
            return int(category.index)
        name = category.category_name
        return self.class_names.index(name) if name in self.class_names else -1

    def _top(self, categories):
        if not categories:
            return -1
        best = categories[0]
        return int(best.index)

    def close(self) -> None:
        self.runner.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def pixel_boxes(rows: np.ndarray, height: int, width: int) -> np.ndarray:
    """Detection rows (``..., 6``: ``ymin, xmin, ymax, xmax`` relative, class, score) with their boxes
    as MediaPipe's ObjectDetector reports the same boxes for an image of ``height`` x ``width``: the
    top-left corner and the size in pixels, each truncated and kept within the image, as relative
    boxes again."""
    rows = np.array(rows, dtype=np.float32, copy=True)
    h, w = np.float32(height), np.float32(width)
    top = np.clip(np.trunc(rows[..., 0] * h), 0, h)
    left = np.clip(np.trunc(rows[..., 1] * w), 0, w)
    tall = np.clip(np.trunc((rows[..., 2] - rows[..., 0]) * h), 0, h)
    wide = np.clip(np.trunc((rows[..., 3] - rows[..., 1]) * w), 0, w)
    rows[..., 0], rows[..., 1] = top / h, left / w
    rows[..., 2], rows[..., 3] = (top + tall) / h, (left + wide) / w
    return rows


def padded(rows: list, k: int) -> np.ndarray:
    """``(len(rows), k, 6)``: each image's detections, padded as LiteRT's (class -1, score 0)."""
    out = np.zeros((len(rows), k, 6), np.float32)
    out[..., 4] = -1
    for image, found in zip(out, rows):
        found = np.asarray(found, np.float32).reshape(-1, 6)[:k]
        image[: len(found)] = found
    return out


def pixels(x: np.ndarray, mean: float, std: float) -> np.ndarray:
    """The 8-bit pixels that made model inputs ``x`` (the model takes ``(pixel - mean) / std``)."""
    return np.clip(np.rint(np.asarray(x, dtype=np.float64) * std + mean), 0, 255).astype(np.uint8)


def texts(ids: np.ndarray, vocabulary: list[str]) -> list[str]:
    """Strings whose words are token ids ``ids`` (padding dropped; an out-of-vocabulary id as a word
    no vocabulary entry matches)."""
    unknown = "unknownword"
    while unknown in vocabulary:
        unknown += "x"
    words = [unknown if i == 1 else vocabulary[i] for i in range(len(vocabulary))]
    return [" ".join(words[int(i)] for i in row if int(i) != 0) for row in np.asarray(ids)]
