"""A kerastack .tflite run by MediaPipe Tasks, the API Android, iOS and Python apps load models with.

MediaPipe reads only the standard ``TFLITE_METADATA`` entry (image properties, normalization,
labels, the tokenizer, audio properties); this module picks the task its file fits from kerastack's
own entry (``output``: ``classes`` of an image, a text or a waveform, a ``mask``) and hands it what
an app has: 8-bit RGB pixels, raw strings, or float waveforms. ``kerastack verify --client mediapipe`` compares it with LiteRT.

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
    (classifiers, one per input) or category masks (the segmenter, one (H, W) array per image)."""

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
        return np.array(self.runner.segment(image).category_mask.numpy_view()).reshape(x.shape[:2])

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
