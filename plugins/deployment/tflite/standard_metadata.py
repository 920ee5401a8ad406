"""The standard LiteRT metadata: the ``TFLITE_METADATA`` entry that apps' runtimes read.

MediaPipe Tasks (ImageClassifier, ImageSegmenter, TextClassifier, ...) and the LiteRT Task Library
read a .tflite's ``TFLITE_METADATA`` entry: a ``metadata_schema.fbs`` flatbuffer (file identifier
``M001``) saying how to prepare the input (image properties, normalization, a tokenizer and its
vocabulary) and what the outputs mean (labels, boxes, masks). Its associated files (``labels.txt``,
``vocab.txt``) are a zip archive appended to the .tflite, which LiteRT ignores.

What goes in it comes from three places:

- the run (model.json's top level, ``described``): name, description, version, author; the input's
  kind: an image (``normalization``: the model takes ``raw * scale + offset`` of 8-bit pixels; a
  pretrained backbone's own preprocessing is inside the model, after that) or token ids (a text
  dataset's ``vocabulary`` and ``tokenizer``, written as a regex tokenizer) or a waveform (an audio
  dataset's ``audio``: its sample rate, as AudioProperties) or plain features;
- the file (its model.json entry): the input and output tensors' types;
- the task: ``core.Task.output_metadata`` (one plain dict per output tensor) and
  ``core.Task.output_groups``, so a task plugin describes its outputs without this module knowing it.
  Readers match the metadata to the outputs by position; where the task names each output (its
  ``tensor``: a detector's ``detection_boxes``, ...), the list is put in the file's order, read from
  the file's signature (the converter orders a detector's outputs count, boxes, classes, scores).

The schema code is vendored (``metadata_schema_generated.py``, from mediapipe 1.2.2): writing the
entry needs only ``flatbuffers``, not mediapipe. ``min_parser_version`` is the newest schema version
among the fields written (``parser_version``), as the schema's history defines it.
"""

KEY = "TFLITE_METADATA"
IDENTIFIER = b"M001"
LABELS_FILE = "labels.txt"
VOCAB_FILE = "vocab.txt"
# The regex tokenizer splits on its pattern (RE2 syntax) and looks each piece up as it is: the
# delimiters of tflite/text.py's words (runs of Unicode letters and digits).
DELIMITER = r"[^\pL\pN]+"
# The names MediaPipe's regex tokenizer looks up (mediapipe/tasks/cc/text/tokenizers/regex_tokenizer.cc).
PAD, UNKNOWN = "<PAD>", "<UNKNOWN>"
RAW_PIXELS = (0.0, 255.0)  # 8-bit pixels: what an app hands an image model

# The schema's history (metadata_schema.fbs): the version that added each field a file may use.
VERSIONS = {
    "vocabulary_file": "1.0.1",
    "subgraph_process_units": "1.1.0",
    "bert_tokenizer": "1.1.0",
    "sentencepiece_tokenizer": "1.1.0",
    "tensor_groups": "1.2.0",
    "regex_tokenizer": "1.2.1",
    "audio_properties": "1.3.0",
    "scann_index_file": "1.4.0",
    "associated_file_version": "1.4.1",
    "custom_metadata": "1.5.0",
}
BASE_VERSION = "1.0.0"


def write_standard_metadata(path, described, entry):
    """Embed ``TFLITE_METADATA`` in the .tflite at ``path`` (replaced atomically) and append its
    associated files; ``described``: model.json's top level, ``entry``: this file's model.json entry.
    Returns what model.json records of it: ``{"min_parser_version", "associated_files", "input"}``."""
    from core import KerastackError
    from tflite.metadata import embed_metadata

    try:
        metadata, files, summary = build(described, entry, output_names(path))
        embed_metadata(path, path, KEY, metadata, files)
    except (ValueError, KeyError, TypeError) as exc:  # a task's output_metadata, or the file itself
        raise KerastackError(
            f"{path}: cannot write the standard metadata (task {described.get('task')!r}): {exc}"
        ) from None
    return summary


def output_names(path):
    """The names of the .tflite's outputs in its signature, in the order of the file's outputs (what
    a reader's output index means); None for an output the signature does not name."""
    from pathlib import Path

    from ai_edge_litert import schema_py_generated as tfl

    model = tfl.Model.GetRootAs(bytearray(Path(path).read_bytes()), 0)
    if not model.SubgraphsLength():
        raise ValueError("the file has no subgraph")
    outputs = [int(t) for t in model.Subgraphs(0).OutputsAsNumpy()] if model.Subgraphs(0).OutputsLength() else []
    named = {}
    for i in range(model.SignatureDefsLength()):
        signature = model.SignatureDefs(i)
        if signature.SubgraphIndex() != 0:
            continue
        for j in range(signature.OutputsLength()):
            tensor = signature.Outputs(j)
            named[tensor.TensorIndex()] = tensor.Name().decode("utf-8")
    return [named.get(t) for t in outputs]


def in_file_order(specs, names):
    """A task's ``output_metadata`` list in the file's output order: by each spec's ``tensor`` (its
    output's name in the signature) where every spec names one, else as the task listed it."""
    wanted = [spec.get("tensor") for spec in specs]
    if not any(wanted) or names is None:
        return list(specs)
    if not all(wanted) or sorted(wanted) != sorted(n for n in names if n is not None) or None in names:
        raise ValueError(
            f"the task describes outputs {wanted}; the file's signature names {names} (in the file's order)"
        )
    by_name = {spec["tensor"]: spec for spec in specs}
    return [by_name[name] for name in names]


def build(described, entry, names=None):
    """``(the metadata flatbuffer's bytes, {associated file name: bytes}, a summary for model.json)``;
    ``names``: the file's outputs' names (``output_names``), which order a task's named outputs."""
    import flatbuffers

    from core import task_named
    from plugins.deployment.tflite import metadata_schema_generated as schema

    files = {}
    task = task_named(described.get("task") or "", optional=True)
    class_names = described.get("class_names") or []
    if class_names:
        files[LABELS_FILE] = ("\n".join(class_names) + "\n").encode("utf-8")
    input_meta, input_summary = _input(schema, described, entry, files)
    outputs = task.output_metadata(class_names) if task is not None else [{"name": "output"}]
    outputs = in_file_order(outputs, names)
    output_meta = [_output(schema, spec, i, files) for i, spec in enumerate(outputs)]
    subgraph = schema.SubGraphMetadataT()
    subgraph.name = described.get("architecture") or "model"
    subgraph.inputTensorMetadata = [input_meta]
    subgraph.outputTensorMetadata = output_meta
    groups = task.output_groups() if task is not None else []
    if groups:
        subgraph.outputTensorGroups = [_group(schema, g) for g in groups]

    model = schema.ModelMetadataT()
    model.name, model.description = _name(described), _description(described, task)
    model.version, model.author = _version(described), described.get("author") or "kerastack"
    model.license = described.get("license")
    model.subgraphMetadata = [subgraph]
    model.minParserVersion = parser_version(model, schema)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=IDENTIFIER)
    summary = {"min_parser_version": model.minParserVersion, "associated_files": sorted(files), **input_summary}
    return bytes(builder.Output()), files, summary


# -- the input ------------------------------------------------------------------------------------
def _input(schema, described, entry, files):
    """The input tensor's metadata and what model.json records of it (``input_kind``, ...)."""
    meta = schema.TensorMetadataT()
    if described.get("vocabulary") and described.get("tokenizer"):
        meta.name, meta.description = "input_text", "Token ids of the text; the tokenizer below makes them."
        meta.content = _content(schema, schema.ContentProperties.FeatureProperties, schema.FeaturePropertiesT())
        files[VOCAB_FILE] = vocabulary_file(described["vocabulary"])
        tokenizer = schema.RegexTokenizerOptionsT()
        tokenizer.delimRegexPattern = DELIMITER
        tokenizer.vocabFile = [_file(schema, VOCAB_FILE, "Token ids by word.", schema.AssociatedFileType.VOCABULARY)]
        meta.processUnits = [_unit(schema, schema.ProcessUnitOptions.RegexTokenizerOptions, tokenizer)]
        return meta, {"input_kind": "text"}
    audio = described.get("audio")
    if isinstance(audio, dict) and audio.get("sample_rate"):
        # A waveform (tflite/audio.py): MediaPipe's AudioClassifier resamples what it is given to this
        # rate and feeds clips of the input's length; the log-mel spectrogram is inside the model.
        meta.name = "audio_clip"
        meta.description = f"A mono waveform in [-1, 1]: {audio['samples']} samples at {audio['sample_rate']} Hz."
        properties = schema.AudioPropertiesT()
        properties.sampleRate, properties.channels = int(audio["sample_rate"]), 1
        meta.content = _content(schema, schema.ContentProperties.AudioProperties, properties)
        meta.stats = _stats(schema, [-1.0], [1.0])
        return meta, {"input_kind": "audio", "sample_rate": int(audio["sample_rate"])}
    channels = image_channels(described)
    if channels:
        scale, offset = pixel_normalization(described)
        mean, std = -offset / scale, 1.0 / scale  # the model takes (pixel - mean) / std
        meta.name = "image"
        meta.description = (
            f"An image of {'x'.join(map(str, described['input_shape'][:2]))} pixels, {_colors(channels)}."
        )
        image = schema.ImagePropertiesT()
        image.colorSpace = schema.ColorSpaceType.RGB if channels == 3 else schema.ColorSpaceType.GRAYSCALE
        meta.content = _content(schema, schema.ContentProperties.ImageProperties, image)
        normalization = schema.NormalizationOptionsT()
        normalization.mean, normalization.std = [mean] * channels, [std] * channels
        meta.processUnits = [_unit(schema, schema.ProcessUnitOptions.NormalizationOptions, normalization)]
        meta.stats = _stats(schema, [RAW_PIXELS[0]] * channels, [RAW_PIXELS[1]] * channels)
        summary = {"input_kind": "image", "normalization_mean": mean, "normalization_std": std}
        return meta, summary
    meta.name, meta.description = "input", "The model's input, prepared as the training data was."
    meta.content = _content(schema, schema.ContentProperties.FeatureProperties, schema.FeaturePropertiesT())
    known = described.get("input_range")
    if known:
        meta.stats = _stats(schema, [known["min"]], [known["max"]])
    return meta, {"input_kind": "features"}


def image_channels(described):
    """1 or 3 where the model takes one image (height, width, channels) of pixel values, else 0."""
    shape = described.get("input_shape") or []
    if len(shape) != 3 or shape[-1] not in (1, 3) or described.get("vocabulary"):
        return 0
    known = described.get("normalization") or {}
    if known.get("raw_range") is not None and list(known["raw_range"]) != [0, 255]:
        return 0  # counts or readings, not 8-bit pixels (scikit-learn's digits: 0-16)
    return shape[-1] if known or described.get("input_range") else 0


def pixel_normalization(described):
    """``(scale, offset)``: the model takes ``pixel * scale + offset`` of 8-bit pixels. The dataset's
    own (model.json's ``normalization``); else, from the training inputs' range: within [0, 1] the
    usual pixel / 255, else the pixels as they are."""
    known = described.get("normalization") or {}
    if isinstance(known.get("scale"), (int, float)) and known["scale"]:
        return float(known["scale"]), float(known.get("offset") or 0.0)
    seen = described.get("input_range") or {}
    if seen.get("min", 0.0) >= 0.0 and seen.get("max", 255.0) <= 1.0:
        return 1.0 / 255.0, 0.0
    return 1.0, 0.0


def vocabulary_file(vocabulary):
    """``vocab.txt`` as MediaPipe's regex tokenizer reads it: ``token id`` a line, ``<PAD>`` and
    ``<UNKNOWN>`` for kerastack's padding and out-of-vocabulary ids. kerastack lower-cases text
    before looking words up; the regex tokenizer does not, so each word is also listed Capitalized
    and UPPER-CASE with the same id (a word in other mixed case is unknown on that side)."""
    from tflite.text import OOV
    from tflite.text import PAD as OWN_PAD

    lines, seen = [], set()
    for i, token in enumerate(vocabulary):
        token = {OWN_PAD: PAD, OOV: UNKNOWN}.get(token, token)
        for form in (
            dict.fromkeys((token, token.capitalize(), token.upper())) if token not in (PAD, UNKNOWN) else [token]
        ):
            if form not in seen:
                seen.add(form)
                lines.append(f"{form} {i}")
    return ("\n".join(lines) + "\n").encode("utf-8")


# -- the outputs ----------------------------------------------------------------------------------
CONTENT = {"feature", "image", "bounding_box"}
LABEL_FILES = {"axis": "TENSOR_AXIS_LABELS", "value": "TENSOR_VALUE_LABELS"}


def _output(schema, spec, index, files):
    """One output tensor's metadata from a task's plain dict (``core.Task.output_metadata``)."""
    meta = schema.TensorMetadataT()
    meta.name = spec.get("name") or f"output_{index}"
    meta.description = spec.get("description")
    content = spec.get("content", "feature")
    if isinstance(content, dict) and "bounding_box" in content:
        box = content["bounding_box"]
        properties = schema.BoundingBoxPropertiesT()
        properties.index = list(box.get("index") or [])
        properties.type = getattr(schema.BoundingBoxType, str(box.get("type", "boundaries")).upper())
        properties.coordinateType = getattr(schema.CoordinateType, str(box.get("coordinate_type", "ratio")).upper())
        meta.content = _content(schema, schema.ContentProperties.BoundingBoxProperties, properties)
    elif content == "image":
        image = schema.ImagePropertiesT()
        image.colorSpace = schema.ColorSpaceType.GRAYSCALE
        meta.content = _content(schema, schema.ContentProperties.ImageProperties, image)
    elif content == "feature":
        meta.content = _content(schema, schema.ContentProperties.FeatureProperties, schema.FeaturePropertiesT())
    else:
        raise ValueError(f"output metadata {meta.name!r}: content={content!r} is not one of {sorted(CONTENT)}")
    if spec.get("range") is not None:
        meta.content.range = schema.ValueRangeT()
        meta.content.range.min, meta.content.range.max = (int(v) for v in spec["range"])
    if spec.get("stats"):
        meta.stats = _stats(schema, spec["stats"].get("min"), spec["stats"].get("max"))
    labels = spec.get("labels")
    if labels:
        if labels not in LABEL_FILES:
            raise ValueError(f"output metadata {meta.name!r}: labels={labels!r} is not one of {sorted(LABEL_FILES)}")
        if LABELS_FILE in files:
            kind = getattr(schema.AssociatedFileType, LABEL_FILES[labels])
            meta.associatedFiles = [_file(schema, LABELS_FILE, "The class names, one a line.", kind)]
    return meta


def _group(schema, group):
    out = schema.TensorGroupT()
    out.name, out.tensorNames = group["name"], list(group["tensors"])
    return out


# -- the model ------------------------------------------------------------------------------------
def _name(described):
    run = str(described.get("source_run") or "").rstrip("/").rsplit("/", 1)[-1]
    return run or f"{described.get('architecture')}-{described.get('dataset')}"


def _description(described, task):
    what = (task.summary if task is not None and task.summary else described.get("task")) or "a model"
    text = f"{described.get('architecture')} trained on {described.get('dataset')}"
    backend = described.get("trained_backend")
    text += f" under {backend}" if backend else ""
    classes = described.get("class_names") or []
    if classes:
        text += f"; classes: {', '.join(classes[:20])}{', ...' if len(classes) > 20 else ''}"
    return f"{described.get('task') or 'model'} ({what}): {text}. Exported by kerastack."


def _version(described):
    return str(described.get("run_created") or described.get("format") or "1")


def parser_version(model, schema):
    """The oldest metadata parser that understands every field of ``model`` (a ``ModelMetadataT``)."""
    used = {BASE_VERSION}
    units = schema.ProcessUnitOptions
    tokenizers = {
        units.BertTokenizerOptions: "bert_tokenizer",
        units.SentencePieceTokenizerOptions: "sentencepiece_tokenizer",
        units.RegexTokenizerOptions: "regex_tokenizer",
    }
    types = schema.AssociatedFileType
    file_types = {types.VOCABULARY: "vocabulary_file", types.SCANN_INDEX_FILE: "scann_index_file"}

    def files(listed):
        for f in listed or ():
            if f.type in file_types:
                used.add(VERSIONS[file_types[f.type]])
            if f.version:
                used.add(VERSIONS["associated_file_version"])

    def process_units(listed):
        for unit in listed or ():
            if unit.optionsType in tokenizers:
                used.add(VERSIONS[tokenizers[unit.optionsType]])
            for name in ("vocabFile", "sentencePieceModel"):
                files(getattr(unit.options, name, None))

    files(model.associatedFiles)
    for subgraph in model.subgraphMetadata or ():
        files(subgraph.associatedFiles)
        for tensor in (subgraph.inputTensorMetadata or []) + (subgraph.outputTensorMetadata or []):
            files(tensor.associatedFiles)
            process_units(tensor.processUnits)
            if tensor.content is not None and tensor.content.contentPropertiesType == (
                schema.ContentProperties.AudioProperties
            ):
                used.add(VERSIONS["audio_properties"])
        if subgraph.inputProcessUnits or subgraph.outputProcessUnits:
            used.add(VERSIONS["subgraph_process_units"])
            process_units(subgraph.inputProcessUnits)
            process_units(subgraph.outputProcessUnits)
        if subgraph.inputTensorGroups or subgraph.outputTensorGroups:
            used.add(VERSIONS["tensor_groups"])
        if subgraph.customMetadata:
            used.add(VERSIONS["custom_metadata"])
    return max(used, key=lambda v: tuple(int(p) for p in v.split(".")))


# -- the schema's pieces --------------------------------------------------------------------------
def _content(schema, kind, properties):
    content = schema.ContentT()
    content.contentPropertiesType, content.contentProperties = kind, properties
    return content


def _unit(schema, kind, options):
    unit = schema.ProcessUnitT()
    unit.optionsType, unit.options = kind, options
    return unit


def _file(schema, name, description, kind):
    out = schema.AssociatedFileT()
    out.name, out.description, out.type = name, description, kind
    return out


def _stats(schema, low, high):
    stats = schema.StatsT()
    stats.min = None if low is None else [float(v) for v in low]
    stats.max = None if high is None else [float(v) for v in high]
    return stats


def _colors(channels):
    return "RGB" if channels == 3 else "grayscale"
