"""MediaPipe's ObjectDetector runs kerastack's detectors from their standard metadata alone: a tiny yolo
trained under TensorFlow on the shapes detection set (in colour, as a yolo_folder: MediaPipe takes RGB
images), exported float32 and int8 (uint8 input, ``io=auto``). Its detections are LiteRT's: the float32
file's row for row, the int8 file's up to the two runtimes' integer kernels. One training process, one
TensorFlow process for the exports and every check."""

import numpy as np
import pytest
from conftest import read_json, run_cli, run_python

pytestmark = pytest.mark.slow

SIZE = 32
FILE_ORDER = ["num_detections", "detection_boxes", "detection_classes", "detection_scores"]


def write_yolo_folder(root, samples, seed=0):
    """``shapes task=detection`` images, each shape in a colour on a dark ground, as Ultralytics'
    layout: images/{train,val,test}, labels/ with ``class cx cy w h``, data.yaml naming the classes."""
    from PIL import Image

    from plugins.datasets import shapes

    data = shapes.load(task="detection", size=SIZE, samples=samples, boxes=2, seed=seed)
    rng = np.random.default_rng(seed)
    i = 0
    for split, (x, y) in (("train", data.train), ("val", data.validation), ("test", data.test)):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for image, rows in zip(x, y):
            shape, ground = rng.uniform(0.5, 1.0, 3), rng.uniform(0.0, 0.3, 3)
            coverage = image[..., :1]
            rgb = np.clip(ground * (1 - coverage) + shape * coverage, 0, 1)
            Image.fromarray((rgb * 255).round().astype("uint8"), "RGB").save(root / "images" / split / f"{i:04d}.png")
            boxes = [r for r in rows if r[4] >= 0]
            (root / "labels" / split / f"{i:04d}.txt").write_text(
                "".join(
                    f"{int(c)} {(x0 + x1) / 2:.6f} {(y0 + y1) / 2:.6f} {x1 - x0:.6f} {y1 - y0:.6f}\n"
                    for x0, y0, x1, y1, c in boxes
                )
            )
            i += 1
    names = ", ".join(shapes.CLASS_NAMES)
    (root / "data.yaml").write_text(f"train: images/train\nval: images/val\ntest: images/test\nnames: [{names}]\n")


TRAIN = """
import sys
from core import train
train("yolo", "yolo_folder", backend="tensorflow", data_options={"path": sys.argv[1], "size": 32},
      hparams={"min_stride": 4}, epochs=10, batch_size=32, checkpoint_every=0, out=sys.argv[2], seed=0, verbose=0)
"""

# Export both files; then, for each, the standard entry as written, verify --client mediapipe, and
# MediaPipe's detections beside LiteRT's on every test image.
JOB = """
import json, sys
import numpy as np
from core import export, load_run
from core.deploy.client import check_client
from core.deploy.export import load_dataset
from plugins.deployment.tflite import metadata_schema_generated as schema
from plugins.deployment.tflite.standard_metadata import output_names
from tflite.mediapipe_client import MediaPipeClient, pixels
from tflite.metadata import associated_files, read_metadata
from tflite.runner import TFLiteModel, load_metadata

run = sys.argv[1]
x, _ = load_dataset(load_run(run)).test
results = {}
for path in [p for p in export(run, "tflite", {"quantize": "none,int8", "calibration_samples": 64,
                                                  "layer_errors": False}) if p.suffix == ".tflite"]:
    meta = load_metadata(path)
    standard = schema.ModelMetadataT.InitFromPackedBuf(bytearray(read_metadata(path)["TFLITE_METADATA"]), 0)
    graph = standard.subgraphMetadata[0]
    location = next(t for t in graph.outputTensorMetadata if t.name == b"location")
    lite = TFLiteModel(path)
    rows = lite.predict(x)
    with MediaPipeClient(path, meta) as app:
        found = app.predict(pixels(x, 0.0, 255.0))
    pairs = equal = 0
    same_count, score_diff, pixel_diff = [], 0.0, 0.0
    for ours, theirs in zip(rows, found):
        ours = ours[ours[:, 4] >= 0]
        same_count.append(len(ours) == len(theirs))
        for a, b in zip(ours, theirs):  # both in the file's order: by score
            px = np.abs(np.array([b[0], b[1], b[2] - b[0], b[3] - b[1]]) * 32
                        - np.array([a[0], a[1], a[2] - a[0], a[3] - a[1]]) * 32).max()
            pairs += 1
            equal += bool(a[4] == b[4] and abs(a[5] - b[5]) < 1e-5 and px < 1.0)
            score_diff, pixel_diff = max(score_diff, abs(a[5] - b[5])), max(pixel_diff, px)
    results[path.stem] = {
        "client": check_client(path, run),
        "io": lite.input_dtype.name,
        "outputs_in_file": output_names(path),
        "metadata_names": [t.name.decode() for t in graph.outputTensorMetadata],
        "groups": [[g.name.decode(), [n.decode() for n in g.tensorNames]] for g in graph.outputTensorGroups],
        "box_index": [int(v) for v in location.content.contentProperties.index],
        "label_types": [[int(f.type) for f in t.associatedFiles or []] for t in graph.outputTensorMetadata],
        "min_parser_version": standard.minParserVersion.decode(),
        "labels": associated_files(path)["labels.txt"].decode(),
        "images": len(x), "same_count": int(sum(same_count)), "rows": pairs, "equal_rows": equal,
        "score_diff": float(score_diff), "pixel_diff": float(pixel_diff),
        "path": str(path),
    }
json.dump(results, open(run + "/mediapipe.json", "w"))
"""


@pytest.fixture(scope="module")
def detectors(tmp_path_factory):
    root = tmp_path_factory.mktemp("mediapipe-detector")
    write_yolo_folder(root / "data", 600)
    run_python(TRAIN, root / "data", root / "run", env={"KERAS_BACKEND": "tensorflow"})
    run_python(JOB, root / "run", env={"KERAS_BACKEND": "tensorflow"})
    return root / "run", read_json(root / "run" / "mediapipe.json")


@pytest.mark.parametrize("variant", ["float32", "int8"])
def test_metadata_names_the_outputs_in_the_files_order(detectors, variant):
    """MediaPipe finds location, category, score and count by their metadata names, at the position
    of the file's outputs, which the converter orders count, boxes, classes, scores."""
    _, results = detectors
    r = results[f"model_{variant}"]
    assert r["outputs_in_file"] == FILE_ORDER
    assert r["metadata_names"] == ["number of detections", "location", "category", "score"]
    assert r["groups"] == [["detection_result", ["location", "category", "score"]]]
    assert r["box_index"] == [1, 0, 3, 2]  # left, top, right, bottom of ymin, xmin, ymax, xmax
    value_labels = 3  # AssociatedFileType.TENSOR_VALUE_LABELS
    assert r["label_types"] == [[], [], [value_labels], []]
    assert r["labels"] == "circle\nsquare\ntriangle\n" and r["min_parser_version"] == "1.2.0"
    assert r["io"] == ("uint8" if variant == "int8" else "float32")


def test_float32_detections_are_litert_s_row_for_row(detectors):
    _, results = detectors
    r = results["model_float32"]
    assert r["same_count"] == r["images"] and r["rows"] >= r["images"], r  # as many, a few an image
    assert r["equal_rows"] == r["rows"], r  # same class, same score, the box within a pixel
    client = r["client"]
    assert client["client_task"] == "ObjectDetector" and client["unit"] == "box", client
    assert client["agreement"] == 1.0 and client["compared"] > 20, client
    # MediaPipe's boxes are whole pixels (truncated): on 32x32 images that costs a little mAP
    # (measured 0.158 against LiteRT's 0.184, this tiny model).
    assert abs(client["tflite_map50"] - client["client_map50"]) <= 0.06, client


def test_int8_detections_are_litert_s_up_to_the_integer_kernels(detectors):
    """The uint8 file takes MediaPipe's pixels as they are; the two runtimes' int8 kernels round a
    little differently (an io=float file gives MediaPipe the same boxes), which moves close calls."""
    _, results = detectors
    client = results["model_int8"]["client"]
    assert client["client_task"] == "ObjectDetector" and client["compared"] > 20, client
    assert client["agreement"] >= 0.8, client  # measured 0.913 of 219 boxes
    assert abs(client["client_map50"] - client["tflite_map50"]) <= 0.06, client


def test_verify_client_mediapipe_on_a_detector(detectors):
    run, results = detectors
    shown = run_cli("verify", results["model_float32"]["path"], "--run", run, "--client", "mediapipe")
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert "mediapipe ObjectDetector" in shown.stdout and "found alike 1.0000" in shown.stdout, shown.stdout
