"""python -m tflite MODEL.tflite [--input FILE.npy|FILE.csv [--normalize]|FILE.wav|IMAGE.png | --text TEXT|FILE.txt ...] [--bench N]
                 [--threads N] [--top K] [--out DIR] [--metadata] [--json]

Examples:
  python -m tflite model_int8.tflite --input samples.npy --top 3
      0: cat 0.9141, dog 0.0547, bird 0.0117
  python -m tflite model_int8.tflite --bench 200 --threads 2
      latency p50 0.041 ms, p90 0.047 ms (200 runs, 2 threads)
  python -m tflite model_int8.tflite --input raw_pixels.npy --normalize
      (scaled as the training data was, e.g. x / 255; the input range and normalization are recorded
      in the metadata, and input far outside that range gets a warning)
  python -m tflite model_int8.tflite --input rows.csv --normalize
      (a model trained on the csv dataset: raw rows with a header row, encoded as the training table
      was: numeric columns standardized, text columns one-hot)
  python -m tflite model_int8.tflite --text "a great film" --text reviews.txt
      (a model trained on a text dataset: each text, or each line of a .txt file, tokenized with the
      vocabulary and rule its metadata records, as training tokenized them)
  python -m tflite audio_int8.tflite --input clip.wav
      0: chirp 0.9609, tone 0.0234, noise 0.0078, clicks 0.0039
      (a model trained on an audio dataset: the WAV clip read as mono, resampled to the model's
      sample rate and cut into windows of its clip length, one line a window)
  python -m tflite unet_int8.tflite --input images.npy --out masks/
      0: background 81.2%, circle 18.8% -> masks/images_0_mask.png, images_0_overlay.png
      (a segmentation model: the class of each pixel as a palette PNG, and the classes over the image)
  python -m tflite yolo_int8.tflite --input street.png --out drawn/
      0: circle 0.93 [12, 30, 25, 44], square 0.88 [40, 8, 55, 22] -> drawn/street_0_boxes.png
      (a detector: each detection's class, score and box in pixels, and the image with the boxes drawn;
      an image file is resized to the model's input and scaled as the training images were)
  python -m tflite model_int8.tflite --metadata
      {"format": "kerastack-tflite/1", "task": "classification", ...}
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from . import boxes, mask
from .audio import WAV_SUFFIXES, audio_spec
from .runner import TFLiteModel, clipping_warning, range_warning
from .text import TEXT_SUFFIXES, read_lines


class _UsageError(ValueError):
    """A flag this model cannot take: exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        # One line, like every other error of this tool; --help has the usage.
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, received {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="tflite",
        description="Run or time a .tflite model with LiteRT (numpy + ai_edge_litert only).",
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", type=Path, help="the .tflite file (labels.txt/model.json beside it are used)")
    p.add_argument(
        "--input",
        type=Path,
        metavar="FILE",
        help="a .npy array of inputs (one sample, or a batch); an image file (.png, .jpg; needs Pillow) for an "
        "image model; a csv model's raw rows as .csv (with --normalize); an audio model's clip as .wav (PCM)",
    )
    p.add_argument(
        "--text",
        action="append",
        metavar="TEXT|FILE.txt",
        help="a text to classify, or a .txt file of texts (one a line); repeatable; for a model trained on a "
        "text dataset (the vocabulary and tokenizing rule are in its metadata)",
    )
    p.add_argument(
        "--normalize",
        action="store_true",
        help="prepare --input as the training data was (the normalization the metadata records, e.g. x / 255; "
        "a csv model's column encodings)",
    )
    p.add_argument("--bench", type=_positive_int, metavar="N", help="time N single-sample invocations")
    p.add_argument("--threads", type=_positive_int, default=1, metavar="N", help="interpreter threads")
    p.add_argument("--top", type=_positive_int, metavar="K", help="show the K best classes (default 5)")
    p.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="where a segmentation model's masks or a detector's drawn boxes go (default: beside --input)",
    )
    p.add_argument(
        "--metadata",
        action="store_true",
        help="print what the exporter recorded (embedded in the file, else the model.json beside it)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


ACCEPTED = (
    "--input takes a .npy array of the model's inputs (numpy.save: one sample, or a batch) or, for a model "
    "trained on a csv table, a .csv file of raw rows with a header row (with --normalize)"
)


def _load_npy(path: Path, model: TFLiteModel) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        x = np.load(path, allow_pickle=False)
    except Exception:  # numpy raises several types for a bad file; all mean the same here
        if _is_text(path):
            raise ValueError(_text_hint(path, model)) from None
        raise ValueError(f"{path}: not a .npy array file; {ACCEPTED}") from None
    if not isinstance(x, np.ndarray) or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise ValueError(f"{path}: expected a numeric array, received {getattr(x, 'dtype', type(x))}")
    return x


def _is_text(path: Path) -> bool:
    """Whether ``path`` (not a .npy array) holds text: a text file's name, or, under a name other
    than .npy (a damaged array stays one), UTF-8 without NULs."""
    if path.suffix.lower() in (*TEXT_SUFFIXES, ".json", ".jsonl", ".tsv"):
        return True
    if path.suffix.lower() == ".npy":
        return False
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
        head.decode("utf-8")
    except (OSError, UnicodeDecodeError):  # a multi-byte character cut at 4096 bytes: not worth a guess
        return False
    return bool(head) and b"\0" not in head


def _text_hint(path: Path, model: TFLiteModel) -> str:
    """What to do with a text file given to --input: --text for a text model, else say it takes none."""
    if (model.metadata or {}).get("vocabulary"):
        return (
            f"{path}: a text file, not a .npy array; use --text {path} (one text a line): this model "
            "tokenizes text with the vocabulary and rule in its metadata"
        )
    return (
        f"{path}: a text file, not a .npy array; {ACCEPTED}. --text reads text for a model trained on a text "
        "dataset, and this model's metadata records no vocabulary"
    )


def _texts(values: list[str]) -> list[str]:
    """The texts of the --text values: a value naming a file (or ending in .txt) is a file of texts,
    one a line; any other value is one text."""
    texts: list[str] = []
    for value in values:
        path = Path(value)
        try:
            is_file = path.is_file()
        except (OSError, ValueError):  # a long sentence is no file name
            is_file = False
        if not is_file and path.suffix.lower() in TEXT_SUFFIXES:
            raise FileNotFoundError(f"--text {value}: no such file (a text to classify itself has no .txt ending)")
        lines = read_lines(path) if is_file else [value]
        if not lines:
            raise ValueError(f"--text {path}: the file holds no line of text")
        texts += lines
    return texts


def _text_input(model: TFLiteModel, values: list[str]) -> np.ndarray:
    """The texts of ``values`` (see ``_texts``) as the token ids the model takes (``encode_texts``)."""
    texts = _texts(values)
    try:
        return model.encode_texts(texts)
    except ValueError as e:  # no vocabulary, no rule, or one for another input shape: not a text model
        raise _UsageError(f"--text: {e}") from None


def _load_input(path: Path, model: TFLiteModel, normalize: bool) -> np.ndarray:
    """The inputs in ``path``: a .csv table's rows encoded with the model's column encodings (with
    ``normalize``), a .wav clip's windows (``TFLiteModel.encode_wav``), an image file's pixels, else a
    .npy array (scaled with the recorded normalization if ``normalize``)."""
    if path.suffix.lower() in WAV_SUFFIXES:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file")
        if audio_spec(model.metadata) is None:  # not an audio model: the flag, not the file, is wrong
            raise _UsageError(
                f"--input {path}: a WAV clip, but {model.path.name}'s metadata records no audio sample rate: a "
                ".wav input is for a model trained on an audio dataset (sounds, audio_folder)"
            )
        return model.encode_wav(path)
    if path.suffix.lower() in boxes.IMAGE_SUFFIXES:
        return _image_input(path, model)
    if path.suffix.lower() == ".csv":
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file")
        if not normalize:
            raise _UsageError(
                f"{path}: a .csv input holds raw table rows; pass --normalize to encode them as the training "
                "table was (the column encodings in the model's metadata)"
            )
        try:
            return model.encode_table(path)
        except ValueError as e:
            raise _UsageError(f"--normalize: {e}") from None
    x = _load_npy(path, model)
    if x.ndim == len(model.input_shape):  # one sample without its batch axis
        x = x[None]
    if normalize:
        try:
            x = model.normalize(x)
        except ValueError as e:
            raise _UsageError(f"--normalize: {e}") from None
    return x


def _image_input(path: Path, model: TFLiteModel) -> np.ndarray:
    """An image file as a batch of one, resized to the model's input and scaled as its training
    images were: the metadata's normalization, else 0-255 pixels to [0, 1] where its inputs lay in
    [0, 1], else the pixels as they are."""
    shape = model.input_shape
    if len(shape) not in (2, 3) or -1 in shape or (len(shape) == 3 and shape[2] not in (1, 3)):
        raise _UsageError(f"{path}: an image file, but the model takes inputs of shape {shape}; pass a .npy array")
    x = boxes.read_image(path, shape)[None]
    if model.normalization is not None:
        return model.normalize(x)
    low_high = model.input_range
    return x / 255.0 if low_high is not None and low_high[1] <= 1.0 else x


def _is_classification(model: TFLiteModel, outputs: np.ndarray, top: int | None) -> bool:
    if outputs.ndim != 2:
        return False
    metadata = model.metadata or {}
    shown = metadata.get("output") == "classes" or metadata.get("task") == "classification"
    return shown or model.labels is not None or top is not None


def _predictions(
    model: TFLiteModel, x: np.ndarray, top: int | None, result: dict, masks: tuple[Path, str] | None = None
) -> tuple[list[dict], list[str]]:
    """Per sample: the top classes, the drawn masks of a segmentation model (into folder
    ``masks[0]``, files named after ``masks[1]``), or the raw outputs."""
    outputs = model.predict(x)
    records, lines = [], []
    _warn(model, clipping_warning(outputs, model.output_limits, model.metadata), result)
    if model.detector:
        folder, stem = masks or (Path("."), model.path.stem)
        return boxes.draw(x, outputs, model.labels, folder, stem)
    if masks and mask.is_segmentation(model.metadata, model.labels, outputs):
        return mask.draw(x, outputs, model.labels, *masks)
    if not _is_classification(model, outputs, top):
        for i, row in enumerate(outputs):
            records.append({"index": i, "output": row.tolist()})
            lines.append(f"{i}: " + " ".join(f"{v:.6g}" for v in row.ravel()))
        return records, lines
    labels, num_classes = model.labels, outputs.shape[1]
    if labels is not None and len(labels) != num_classes:
        raise ValueError(f"{model.path}: {len(labels)} labels but the model outputs {num_classes} classes")
    k = min(top or 5, num_classes)
    for i, row in enumerate(outputs):
        best = np.argsort(-row, kind="stable")[:k]
        top_k = [
            {"class": int(c), "label": labels[c] if labels else str(c), "probability": float(row[c])} for c in best
        ]
        records.append({"index": i, "top": top_k})
        lines.append(f"{i}: " + ", ".join(f"{t['label']} {t['probability']:.4f}" for t in top_k))
    return records, lines


def _bench_input(model: TFLiteModel, x: np.ndarray | None) -> np.ndarray:
    if x is not None:
        return x[:1]
    if -1 in model.input_shape:
        raise ValueError(f"{model.path}: input shape {model.input_shape} is dynamic; pass --input")
    return np.random.default_rng(0).random((1,) + model.input_shape, dtype=np.float32)


def _input(model: TFLiteModel, path: Path, normalize: bool, result: dict) -> np.ndarray:
    """The batch in ``path`` (see ``_load_input``); a one-line warning on stderr (and in
    ``result["warnings"]``) when it lies far outside the training inputs' range."""
    x = _load_input(path, model, normalize)
    _warn(model, range_warning(x, model.metadata, normalized=normalize), result)
    return x


def _warn(model: TFLiteModel, warning: str | None, result: dict) -> None:
    if warning:
        print(f"tflite: warning: {model.path.name}: {warning}", file=sys.stderr)
        result.setdefault("warnings", []).append(warning)


def _run(args: argparse.Namespace) -> int:
    model = TFLiteModel(args.model, num_threads=args.threads)
    result: dict = {"model": str(model.path), "threads": args.threads}
    x = _input(model, args.input, args.normalize, result) if args.input is not None else None
    x = _text_input(model, args.text) if args.text else x
    lines: list[str] = []
    if args.metadata:
        result["metadata"] = model.metadata
        lines.append(json.dumps(model.metadata, indent=2))
    if x is not None:
        where = (args.out or args.input.parent, args.input.stem) if args.input else None  # masks: --input only
        predictions, more = _predictions(model, x, args.top, result, where)
        result["predictions"] = predictions
        lines += more
    if args.bench:
        bench = model.benchmark(_bench_input(model, x), runs=args.bench, warmup=min(10, args.bench))
        result["benchmark"] = bench
        plural = "s" if args.threads != 1 else ""
        lines.append(
            f"latency p50 {bench['p50_ms']:.3f} ms, p90 {bench['p90_ms']:.3f} ms "
            f"({bench['runs']} runs, {args.threads} thread{plural})"
        )
    print(json.dumps(result) if args.json else "\n".join(lines))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.input is None and not args.text and args.bench is None and not args.metadata:
        parser.error("give --input FILE.npy, --bench N, --metadata, --text TEXT, or several")
    if args.input is not None and args.text:
        parser.error("give --input FILE or --text TEXT, not both")
    if args.normalize and args.input is None:
        parser.error("--normalize prepares --input FILE; give it one")
    try:
        return _run(args)
    except _UsageError as e:
        print(f"tflite: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    except (OSError, ValueError, RuntimeError) as e:
        if args.debug:
            raise
        message = " ".join(str(e).split()) or type(e).__name__  # always one line
        print(f"tflite: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
