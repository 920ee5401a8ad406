"""What the ``tflite`` exporter writes: ``model_<variant>.tflite``, its entry in ``model.json`` (also
embedded in the file) and ``labels.txt``."""

import gzip

from plugins.deployment.tflite import checks
from plugins.deployment.tflite.layer_errors import output_layer_name
from plugins.deployment.tflite.options import INTEGER_VARIANTS, io_type


def variant_name(mode, options, mixed=False):
    """The file name's variant: ``float32``, ``int8``, ``int8-floatio``, ``int8-pertensor``, ``int8-mixed``
    (``mixed``: int8 with layers kept float)…"""
    name = {"none": "float32"}.get(mode, mode)
    name += "-mixed" if mode == "int8" and mixed else ""
    name += "-floatio" if mode in INTEGER_VARIANTS and options.io == "float" else ""
    return name + ("" if options.per_channel or mode in ("none", "float16") else "-pertensor")


def first_tflite(paths):
    """The .tflite files first (in the order written), then the sidecars."""
    return [p for p in paths if p.suffix == ".tflite"] + [p for p in paths if p.suffix != ".tflite"]


def write_files(ctx, flatbuffer, variant, mode, options, batch, extra=None):
    """Write ``model_<variant>.tflite`` and its model.json entry (plus ``extra``), and labels.txt.

    ``mode``: the variant's quantization (``int8`` for a QAT model); ``options`` (a
    ``TFLiteOptions``): its ``io`` and ``allow_select_ops``. Returns the paths written.
    """
    from core import read_json, write_json, write_text
    from plugins.deployment.tflite.convert import raw_pixel_input
    from plugins.deployment.tflite.metadata import MODEL_JSON, embed_run_metadata
    from plugins.deployment.tflite.standard_metadata import (
        image_channels,
        pixel_normalization,
        write_standard_metadata,
    )

    path = ctx.out_dir / f"model_{variant}.tflite"
    targets = checks.training_targets(ctx.dataset, ctx.run.get("spec", {}).get("task"))
    described = _describe_run(ctx)
    raw = None
    if mode in INTEGER_VARIANTS and io_type(options.io, mode) == "uint8" and image_channels(described):
        # An app feeds the 8-bit pixels as they are: the uint8 input takes them (model.json says if not).
        flatbuffer, raw = raw_pixel_input(flatbuffer, *pixel_normalization(described))
    entry = {**_write_tflite(path, flatbuffer, mode, options, batch, targets), **(extra or {})}
    if raw is not None:
        entry["input_raw_pixels"] = raw
    if "output_range" in entry:
        entry["output_range"]["output_layer"] = _output_layer(ctx.model)
        if entry["output_range"]["clipped"]:
            checks.warn(checks.clipping_text(path.name, entry["output_range"]))
    meta_path = ctx.out_dir / MODEL_JSON
    meta = read_json(meta_path, "metadata file") if meta_path.exists() else {}
    meta.update(described)
    # The standard entry first (apps' runtimes: MediaPipe Tasks, the LiteRT Task Library), then
    # kerastack's own, which keeps the first and its associated files and updates the sizes.
    entry["standard_metadata"] = write_standard_metadata(path, {**meta, "run_created": ctx.run.get("created")}, entry)
    meta.setdefault("files", {})[path.name] = entry
    written = [path, write_json(meta_path, meta)]
    # The same description inside the .tflite (one file is a whole deployment); sizes updated.
    embed_run_metadata(path, meta)
    class_names = ctx.run.get("spec", {}).get("class_names")
    if class_names:
        written.append(write_text(ctx.out_dir / "labels.txt", "\n".join(class_names) + "\n"))
    return written


def _output_layer(model):
    """The name of the layer that makes the model's output, or None (a subclassed model)."""
    try:
        return output_layer_name(model)
    except (AttributeError, IndexError):
        return None


def _write_tflite(path, flatbuffer, mode, options, batch, targets=None):
    """Write the flatbuffer to ``path`` (refused if it needs non-builtin ops that were not allowed);
    return its model.json entry: with ``float_ops`` (ops computing in float inside an integer
    file) and, where an integer tensor makes a regression model's output, ``output_range`` against
    the training ``targets`` (``checks``)."""
    from core import KerastackError, atomic_path
    from plugins.deployment.tflite.runtime_versions import runtime_requirements
    from tflite.ops import op_versions
    from tflite.runner import TFLiteModel

    with atomic_path(path) as tmp:
        tmp.write_bytes(flatbuffer)
        model = TFLiteModel(tmp)
        flex = sorted({op for op in model.op_names() if op.startswith("Flex") or op == "CUSTOM"})
        if flex and not options.allow_select_ops:
            raise KerastackError(f"exporter 'tflite': the converted model needs non-builtin ops {flex}")
        entry = {
            "quantize": mode,
            "io": options.io if mode in INTEGER_VARIANTS else "float",
            "batch": batch,
            "size_bytes": len(flatbuffer),
            "gzip_bytes": len(gzip.compress(flatbuffer, 9, mtime=0)),
            "ops": sorted(set(model.op_names())),
            # Each op's version, from the file's operator codes: what an older runtime must have.
            "op_versions": op_versions(flatbuffer),
            "input": _tensor(model.input_details),
            "output": _tensor(model.output_details),
        }
        runtime = runtime_requirements(entry["op_versions"], tmp)
        if runtime is not None:
            entry["runtime"] = runtime
        if mode in INTEGER_VARIANTS:
            entry["float_ops"] = model.float_ops()
        checked = checks.output_range(model, targets)
        if checked is not None:
            entry["output_range"] = checked
        return entry


def _device_output(task):
    """How the device runner shows the output (``core.Task.device``: classes, mask, values, raw)."""
    from core import task_named

    known = task_named(task or "", optional=True)
    return known.device if known is not None else "raw"


def _describe_run(ctx):
    """model.json's top level: the task, classes and input of the run the files come from."""
    spec = ctx.run.get("spec", {})
    described = {
        "format": "kerastack-tflite/1",
        "task": spec.get("task"),
        "output": _device_output(spec.get("task")),
        "input_shape": spec.get("input_shape"),
        "class_names": spec.get("class_names"),
        "source_run": str(ctx.run_dir.resolve()),
        "architecture": ctx.run.get("architecture", {}).get("name"),
        "dataset": ctx.run.get("dataset", {}).get("name"),
        "trained_backend": ctx.run.get("training", {}).get("backend"),
    }
    # What a device needs to prepare inputs like the training data: a text dataset's vocabulary and
    # tokenizing rule (tflite/text.py), a table's column encodings, an audio clip's sample rate and
    # length (tflite/audio.py), the range of the inputs and the scaling that made them.
    for key in ("vocabulary", "tokenizer", "preprocessing", "audio"):
        if getattr(ctx.dataset, key, None) is not None:
            described[key] = getattr(ctx.dataset, key)
    inside = model_preprocessing(ctx.model)
    if inside:
        described["model_preprocessing"] = inside
    value_range = input_range(ctx.dataset, ctx.model)
    if value_range is not None:
        described["input_range"] = value_range
        normalization = input_normalization(ctx.dataset, ctx.run.get("dataset", {}).get("name"))
        if normalization is not None:
            described["normalization"] = normalization
    return described


RANGE_SAMPLES = 2048  # of a streamed training split (images read from disk); arrays are read whole
# Datasets that scale raw values (pixels, counts) into the model's inputs, where the plugin records
# none itself (a dataset may set ``dataset.normalization = {"scale": s, "offset": o}``): the model
# takes ``raw * scale + offset``, as the dataset computed it.
KNOWN_NORMALIZATION = {
    "image_folder": {"scale": 1 / 255, "offset": 0.0, "raw_range": [0, 255]},  # 8-bit pixels
    "digits": {"scale": 1 / 16, "offset": 0.0, "raw_range": [0, 16]},  # scikit-learn's 0-16 counts
}
_last_range = {}  # the dataset last measured, and its range: one export writes several files


def input_range(dataset, model):
    """``{"min", "max", "samples"}`` of the training inputs (up to ``RANGE_SAMPLES`` of a streamed
    split), or None where the model takes something else than the data (a generator's noise) or
    the inputs are not numbers."""
    import numpy as np

    from core import as_arrays, input_fits, is_pair

    if _last_range.get("dataset") is dataset:
        return _last_range["range"]
    x, _ = as_arrays(dataset.train, limit=None if is_pair(dataset.train) else RANGE_SAMPLES)
    x = np.asarray(x)
    found = None
    if x.size and x.dtype.kind in "biuf" and input_fits(model.input_shape[1:], x.shape[1:]):
        low, high = float(np.nanmin(x)), float(np.nanmax(x))
        if np.isfinite(low) and np.isfinite(high):
            found = {"min": low, "max": high, "samples": len(x)}
    _last_range.update(dataset=dataset, range=found)
    return found


def model_preprocessing(model):
    """What the model itself does to its inputs before its first learned layer (a pretrained
    backbone's library preprocessing, baked in): each layer that says so through a ``record()``
    method, in model order, as ``{"layer", ...}``."""
    found = []
    for layer in model._flatten_layers(include_self=False, recursive=True):
        record = getattr(layer, "record", None)
        if callable(record) and type(layer).__name__ == "PixelPreprocessing":
            found.append({"layer": layer.name, **record()})
    return found


def input_normalization(dataset, name):
    """``{"scale", "offset", ...}``: the dataset's own ``normalization`` if it set one, else what
    ``KNOWN_NORMALIZATION`` says of the built-in dataset ``name``, else None (not known)."""
    declared = getattr(dataset, "normalization", None)
    if isinstance(declared, dict) and isinstance(declared.get("scale"), (int, float)):
        return {"offset": 0.0, **declared}
    known = KNOWN_NORMALIZATION.get(name)
    return dict(known) if known else None


def _tensor(details):
    scale, zero_point = details.get("quantization", (0.0, 0))
    return {
        "name": details["name"],
        "shape": [int(d) for d in details.get("shape_signature", details["shape"])],
        "dtype": details["dtype"].__name__ if hasattr(details["dtype"], "__name__") else str(details["dtype"]),
        "quantization": {"scale": float(scale), "zero_point": int(zero_point)},
    }
