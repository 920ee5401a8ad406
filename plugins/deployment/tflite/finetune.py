"""The ``tflite`` exporter's fine-tuning steps, each run in the process it needs.

Native QAT and native pruning fine-tune under the run's backend (in this TensorFlow process when
that is the run's backend, else in a child process of that backend) and leave a .keras file beside
the exports; tfmot work runs in a TensorFlow child process of its own (``tfmot_jobs``), because
importing tfmot switches its process to legacy Keras.
"""

from pathlib import Path

from plugins.deployment.tflite import pruning, tfmot_jobs

QAT_LEARNING_RATE = 1e-4
LEARNING_RATE = 1e-3


def in_backend(backend, function, kwargs):
    """``function(**kwargs)`` here if this process runs ``backend``, else in a child process."""
    from core import call_in_backend, loaded_backend

    if loaded_backend() == backend:
        return function(**kwargs)
    return call_in_backend(backend, function, kwargs)


def in_tfmot_process(function, kwargs):
    """``function(**kwargs)`` in a fresh TensorFlow process, where tfmot may switch Keras to legacy."""
    from core import call_in_backend

    return call_in_backend("tensorflow", function, kwargs)


def quantization_aware(ctx, qat, epochs, io, allow_select_ops, tuning):
    """QAT with ``qat`` ("native" or "tfmot"), converted to int8; returns the paths written."""
    from plugins.deployment.tflite import exporter

    variant = "int8-qat-" + qat + ("-floatio" if io == "float" else "")
    common = dict(
        run_dir=str(ctx.run_dir.resolve()),
        epochs=epochs,
        seed=tuning["seed"],
        learning_rate=tuning["learning_rate"] or QAT_LEARNING_RATE,
    )
    if qat == "native":
        from plugins.deployment.tflite import qat as native

        keras_path = ctx.out_dir / "qat_native.keras"
        info = in_backend(tuning["backend"], native.train_qat, dict(common, out=str(keras_path)))
        model = native.load(keras_path, ctx.run.get("custom_modules", ()))
        flatbuffer, batch = exporter.convert(model, "qat", io, ctx.dataset, 1, allow_select_ops, tuning["seed"])
        check_integer_only(flatbuffer, io, "qat=native", [layer.name for layer in model._flatten_layers()])
        info = {k: v for k, v in info.items() if k not in ("calibrated_ranges", "integer_inputs")}
        info["fake_quant"] = _evaluate(ctx, model)
        written = [keras_path]
    else:
        out = ctx.out_dir / ".qat_tfmot.tflite"
        try:
            info = in_tfmot_process(
                tfmot_jobs.quantize,
                dict(common, out=str(out), io=io, allow_select_ops=allow_select_ops),
            )
            flatbuffer, batch = out.read_bytes(), None
        finally:
            out.unlink(missing_ok=True)
        check_integer_only(flatbuffer, io, "qat=tfmot", info.pop("layers"), keras3=False)
        written = []
    info["float"] = _evaluate(ctx, ctx.model)
    extra = {"qat": info}
    # A full-integer file like quantize=int8's; how it was made is under "qat".
    paths = exporter.write_files(ctx, flatbuffer, variant, "int8", io, allow_select_ops, batch, extra)
    return exporter._first_tflite(paths) + written


def pruned(ctx, target, epochs, method, tuning):
    """``(model, file suffix, model.json extra, paths written)`` after pruning to ``target`` sparsity."""
    from plugins.deployment.tflite.qat import load

    percent = int(round(target * 100))
    keras_path = ctx.out_dir / f"pruned{percent}_{method}.keras"
    kwargs = dict(
        run_dir=str(ctx.run_dir.resolve()),
        out=str(keras_path),
        target=target,
        epochs=epochs,
        learning_rate=tuning["learning_rate"] or LEARNING_RATE,
        seed=tuning["seed"],
    )
    if method == "native":
        info = in_backend(tuning["backend"], pruning.train_pruned, kwargs)
    else:
        info = in_tfmot_process(tfmot_jobs.prune, kwargs)
    model = load(keras_path, ctx.run.get("custom_modules", ()))
    info.update(float=_evaluate(ctx, ctx.model), pruned=_evaluate(ctx, model))
    suffix = f"-pruned{percent}" + ("-tfmot" if method == "tfmot" else "")
    return model, suffix, {"pruning": info}, [keras_path]


def clustered(ctx, clusters, epochs, tuning):
    """``(model, file suffix, model.json extra, paths written)`` after clustering to ``clusters`` values."""
    from plugins.deployment.tflite.qat import load

    keras_path = ctx.out_dir / f"clustered{clusters}.keras"
    info = in_tfmot_process(
        tfmot_jobs.cluster,
        dict(
            run_dir=str(ctx.run_dir.resolve()),
            out=str(keras_path),
            clusters=clusters,
            epochs=epochs,
            learning_rate=tuning["learning_rate"] or QAT_LEARNING_RATE,
            seed=tuning["seed"],
        ),
    )
    model = load(keras_path, ctx.run.get("custom_modules", ()))
    info.update(float=_evaluate(ctx, ctx.model), clustered=_evaluate(ctx, model))
    return model, f"-clustered{clusters}", {"clustering": info}, [keras_path]


def _evaluate(ctx, model):
    from plugins.deployment.tflite.qat import evaluate

    return evaluate(model, ctx.dataset, ctx.run.get("spec", {}).get("task"))


def check_integer_only(flatbuffer, io, what, layer_names, keras3=True):
    """Fail, naming the layers, if a quantization-aware model converted with float islands in it:
    float32 tensors (other than a float input/output with ``io=float``) or DEQUANTIZE ops."""
    import tempfile

    from core import KerastackError
    from tflite.runner import TFLiteModel

    with tempfile.TemporaryDirectory(prefix="kerastack-check-") as tmp:
        path = Path(tmp) / "model.tflite"
        path.write_bytes(flatbuffer)
        model = TFLiteModel(path)
        io_names = {model.input_details["name"], model.output_details["name"]} if io == "float" else set()
        dtypes = {t["index"]: t for t in model.tensor_dtypes()}
        floats = []  # float tensors, in the order the ops that make them run
        for op in model._interpreter._get_ops_details():
            for index in op["outputs"]:
                t = dtypes.get(int(index))
                if t and t["dtype"] not in ("int8", "int32") and t["name"] not in io_names:
                    floats.append(t["name"])
        dequantize = model.op_names().count("DEQUANTIZE") - (1 if io == "float" else 0)
    if not floats and dequantize <= 0:
        return
    # The layers of the float ops, in the order they run: the first is where the island starts.
    named = []
    for tensor in floats:
        named += [n for n in layer_names if _mentions(tensor, n, keras3) and n not in named]
    where = f"layer(s) {', '.join(map(repr, named))}" if named else "tensor(s) " + ", ".join(map(repr, floats[:5]))
    raise KerastackError(
        f"exporter 'tflite': {what}: the int8 model kept float computation ({len(floats)} float tensors, "
        f"{max(dequantize, 0)} DEQUANTIZE ops) at {where}: a layer without fake quantization stays a "
        "float island"
    )


def _mentions(tensor_name, layer_name, keras3):
    """Whether a LiteRT tensor name comes from the layer: Keras 3's SavedModel export names its ops
    ``<layer name>_<n>/...``, tf_keras ``<layer name>/...``."""
    parts = tensor_name.replace(";", "/").split("/")
    if keras3:
        return any(p.rpartition("_")[0] == layer_name and p.rpartition("_")[2].isdigit() for p in parts)
    return layer_name in parts
