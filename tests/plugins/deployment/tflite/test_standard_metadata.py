"""The standard ``TFLITE_METADATA`` entry, built from model.json's description and read back with the
schema's own reader (no training: seconds). MediaPipe reading real exports: test_mediapipe.py."""

import pytest

from plugins.deployment.tflite import metadata_schema_generated as schema
from plugins.deployment.tflite.standard_metadata import (
    IDENTIFIER,
    build,
    image_channels,
    parser_version,
    pixel_normalization,
    vocabulary_file,
)

IMAGE = {
    "task": "classification",
    "input_shape": [32, 32, 3],
    "class_names": ["circle", "square", "triangle"],
    "source_run": "/runs/cnn-image_folder-1",
    "architecture": "cnn",
    "dataset": "image_folder",
    "trained_backend": "torch",
    "input_range": {"min": 0.0, "max": 1.0, "samples": 200},
    "normalization": {"scale": 1 / 255, "offset": 0.0, "raw_range": [0, 255]},
    "run_created": "2026-12-06T20:05:24+0000",
}
TEXT = {
    "task": "classification",
    "input_shape": [12],
    "class_names": ["negative", "positive"],
    "architecture": "transformer",
    "dataset": "text_folder",
    "vocabulary": ["<pad>", "<oov>", "good", "bad", "42"],
    "tokenizer": {"kind": "words", "length": 12},
}


def read(data):
    assert data[4:8] == IDENTIFIER
    return schema.ModelMetadataT.InitFromPackedBuf(bytearray(data), 0)


def test_an_rgb_classifier_says_how_pixels_become_its_input():
    data, files, summary = build(IMAGE, {})
    meta = read(data)
    assert meta.name.decode() == "cnn-image_folder-1" and meta.version.decode() == IMAGE["run_created"]
    assert b"circle, square, triangle" in meta.description and meta.author.decode() == "kerastack"
    (graph,) = meta.subgraphMetadata
    (image,) = graph.inputTensorMetadata
    assert image.content.contentPropertiesType == schema.ContentProperties.ImageProperties
    assert image.content.contentProperties.colorSpace == schema.ColorSpaceType.RGB
    (unit,) = image.processUnits
    assert unit.optionsType == schema.ProcessUnitOptions.NormalizationOptions
    # The model takes pixel / 255: (pixel - 0) / 255.
    assert list(unit.options.mean) == [0.0] * 3 and list(unit.options.std) == pytest.approx([255.0] * 3)
    assert list(image.stats.min) == [0.0] * 3 and list(image.stats.max) == [255.0] * 3
    (probability,) = graph.outputTensorMetadata
    (labels,) = probability.associatedFiles
    assert labels.name.decode() == "labels.txt" and labels.type == schema.AssociatedFileType.TENSOR_AXIS_LABELS
    assert files == {"labels.txt": b"circle\nsquare\ntriangle\n"}
    assert meta.minParserVersion.decode() == "1.0.0"
    assert summary == {
        "min_parser_version": "1.0.0",
        "associated_files": ["labels.txt"],
        "input_kind": "image",
        "normalization_mean": 0.0,
        "normalization_std": pytest.approx(255.0),
    }


def test_pixel_normalization_follows_the_dataset_else_the_inputs_range():
    assert pixel_normalization({"normalization": {"scale": 2 / 255, "offset": -1.0}}) == (2 / 255, -1.0)
    assert pixel_normalization({"input_range": {"min": 0.0, "max": 0.98}}) == (1 / 255, 0.0)
    assert pixel_normalization({"input_range": {"min": 0.0, "max": 250.0}}) == (1.0, 0.0)
    # scikit-learn's digits (0-16 counts) and a flat table are not images.
    assert image_channels({"input_shape": [8, 8, 1], "normalization": {"scale": 1 / 16, "raw_range": [0, 16]}}) == 0
    assert image_channels({"input_shape": [30], "input_range": {"min": 0, "max": 1}}) == 0
    assert image_channels({"input_shape": [16, 16, 1], "input_range": {"min": 0, "max": 1}}) == 1


def test_a_text_classifier_carries_its_tokenizer_and_vocabulary():
    data, files, summary = build(TEXT, {})
    meta = read(data)
    (tokens,) = meta.subgraphMetadata[0].inputTensorMetadata
    (unit,) = tokens.processUnits
    assert unit.optionsType == schema.ProcessUnitOptions.RegexTokenizerOptions
    (vocab,) = unit.options.vocabFile
    assert vocab.name.decode() == "vocab.txt" and vocab.type == schema.AssociatedFileType.VOCABULARY
    # RegexTokenizerOptions is schema 1.2.1: an older parser would not know it.
    assert meta.minParserVersion.decode() == "1.2.1" == summary["min_parser_version"]
    assert summary["associated_files"] == ["labels.txt", "vocab.txt"] and summary["input_kind"] == "text"
    lines = files["vocab.txt"].decode().splitlines()
    assert lines[:2] == ["<PAD> 0", "<UNKNOWN> 1"]
    # kerastack lower-cases before the lookup, the regex tokenizer does not: the common cases listed.
    assert {"good 2", "Good 2", "GOOD 2", "bad 3", "42 4"} <= set(lines) and len(lines) == len(set(lines)) == 9


def test_vocabulary_file_keeps_ids():
    assert vocabulary_file(["<pad>", "<oov>", "é"]).decode().splitlines() == ["<PAD> 0", "<UNKNOWN> 1", "é 2", "É 2"]


def test_min_parser_version_is_the_newest_field_written():
    meta = schema.ModelMetadataT()
    graph = schema.SubGraphMetadataT()
    meta.subgraphMetadata = [graph]
    assert parser_version(meta, schema) == "1.0.0"
    group = schema.TensorGroupT()
    group.name, group.tensorNames = "detection_result", ["location", "category", "score"]
    graph.outputTensorGroups = [group]  # a detector's (core.Task.output_groups)
    assert parser_version(meta, schema) == "1.2.0"
    tensor = schema.TensorMetadataT()
    tensor.content = schema.ContentT()
    tensor.content.contentPropertiesType = schema.ContentProperties.AudioProperties
    graph.inputTensorMetadata = [tensor]
    assert parser_version(meta, schema) == "1.3.0"


def test_a_task_describes_its_outputs():
    """Detection (four outputs, boxes, value labels) plugs in through core.Task alone."""
    from core import Task

    class Boxes(Task):
        classes = True

        def output_metadata(self, class_names=None):
            box = {"bounding_box": {"index": [1, 0, 3, 2], "type": "boundaries", "coordinate_type": "ratio"}}
            return [
                {"name": "location", "content": box, "range": [2, 2]},
                {"name": "category", "labels": "value"},
                {"name": "score"},
                {"name": "number of detections"},
            ]

        def output_groups(self):
            return [{"name": "detection_result", "tensors": ["location", "category", "score"]}]

    import core.task

    core.task._made["boxes-test"] = Boxes()
    try:
        data, _, summary = build({**IMAGE, "task": "boxes-test"}, {})
    finally:
        del core.task._made["boxes-test"]
    graph = read(data).subgraphMetadata[0]
    location, category, _, _ = graph.outputTensorMetadata
    assert location.content.contentPropertiesType == schema.ContentProperties.BoundingBoxProperties
    assert list(location.content.contentProperties.index) == [1, 0, 3, 2]
    assert (location.content.range.min, location.content.range.max) == (2, 2)
    assert category.associatedFiles[0].type == schema.AssociatedFileType.TENSOR_VALUE_LABELS
    assert [n.decode() for n in graph.outputTensorGroups[0].tensorNames] == ["location", "category", "score"]
    assert summary["min_parser_version"] == "1.2.0"


def test_a_bad_output_description_names_the_tensor():
    from plugins.deployment.tflite.standard_metadata import _output

    with pytest.raises(ValueError, match=r"'mask': content='pixels' is not one of"):
        _output(schema, {"name": "mask", "content": "pixels"}, 0, {})


DETECTOR = {**IMAGE, "task": "detection", "architecture": "yolo", "dataset": "yolo_folder"}


def test_a_detectors_metadata_follows_the_files_output_order():
    """The converter orders a detector's outputs count, boxes, classes, scores; MediaPipe's
    ObjectDetector reads the metadata by position and finds each output by its metadata name."""
    file_order = ["num_detections", "detection_boxes", "detection_classes", "detection_scores"]
    data, files, summary = build(DETECTOR, {}, file_order)
    graph = read(data).subgraphMetadata[0]
    count, location, category, score = graph.outputTensorMetadata
    assert [t.name.decode() for t in (count, location, category, score)] == [
        "number of detections",
        "location",
        "category",
        "score",
    ]
    box = location.content.contentProperties
    assert location.content.contentPropertiesType == schema.ContentProperties.BoundingBoxProperties
    assert list(box.index) == [1, 0, 3, 2] and box.type == schema.BoundingBoxType.BOUNDARIES
    assert box.coordinateType == schema.CoordinateType.RATIO
    assert category.associatedFiles[0].type == schema.AssociatedFileType.TENSOR_VALUE_LABELS
    assert [n.decode() for n in graph.outputTensorGroups[0].tensorNames] == ["location", "category", "score"]
    assert files["labels.txt"] == b"circle\nsquare\ntriangle\n" and summary["min_parser_version"] == "1.2.0"
    # Another order of the same outputs moves the metadata with them.
    data, _, _ = build(DETECTOR, {}, list(reversed(file_order)))
    names = [t.name.decode() for t in read(data).subgraphMetadata[0].outputTensorMetadata]
    assert names == ["score", "category", "location", "number of detections"]


def test_outputs_the_task_names_must_be_the_files():
    with pytest.raises(ValueError, match=r"the task describes outputs \['detection_boxes'.*the file's signature names"):
        build(DETECTOR, {}, ["num_detections", "detection_boxes", "detection_classes", "scores"])
    # A file whose signature names no outputs: the task's own order.
    data, _, _ = build(DETECTOR, {}, None)
    assert read(data).subgraphMetadata[0].outputTensorMetadata[0].name == b"location"
