"""The ``tflite`` exporter's fine-tuning steps, each run in the process it needs.

Native QAT and native pruning fine-tune under the run's backend (in this TensorFlow process when
that is the run's backend, else in a child process of that backend) and leave a .keras file beside
the exports; tfmot work runs in a TensorFlow child process of its own (``tfmot_jobs``), because
importing tfmot switches its process to legacy Keras.
"""

from dataclasses import replace

from plugins.deployment.tflite import pruning, qat, tfmot_jobs, tuning
from plugins.deployment.tflite.artifacts import first_tflite, write_files
from plugins.deployment.tflite.convert import check_integer_only, convert
from plugins.deployment.tflite.options import LEARNING_RATE, QAT_LEARNING_RATE


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


def quantization_aware(ctx, options):
    """QAT with ``options.qat`` ("native" or "tfmot"), converted to int8; returns the paths written."""
    if options.qat == "native":
        flatbuffer, batch, info, written = _native_qat(ctx, options)
    else:
        flatbuffer, batch, info, written = _tfmot_qat(ctx, options)
    info["float"] = _evaluate(ctx, ctx.model)
    variant = "int8-qat-" + options.qat + ("-floatio" if options.io == "float" else "")
    # A full-integer file like quantize=int8's; how it was made is under "qat".
    paths = write_files(ctx, flatbuffer, variant, "int8", options, batch, {"qat": info})
    return first_tflite(paths) + written


def _native_qat(ctx, options):
    """``(flatbuffer, batch, model.json "qat" entry, paths written)`` of Keras-native QAT."""
    model, info, keras_path = _fine_tune(
        ctx,
        options,
        qat.train_qat,
        "qat_native.keras",
        _backend(ctx, options),
        epochs=options.qat_epochs,
        learning_rate=options.learning_rate_or(QAT_LEARNING_RATE),
    )
    # The fake-quant layers carry per-channel ranges of their own: per_channel does not apply.
    flatbuffer, batch = convert(model, "qat", replace(options, per_channel=True), ctx.dataset)
    check_integer_only(flatbuffer, options.io, "qat=native", [layer.name for layer in model._flatten_layers()])
    info = {k: v for k, v in info.items() if k not in ("calibrated_ranges", "integer_inputs")}
    info["fake_quant"] = _evaluate(ctx, model)
    return flatbuffer, batch, info, [keras_path]


def _tfmot_qat(ctx, options):
    """``(flatbuffer, batch, model.json "qat" entry, paths written)`` of tfmot QAT."""
    out = ctx.out_dir / ".qat_tfmot.tflite"
    try:
        info = in_tfmot_process(
            tfmot_jobs.quantize,
            dict(
                _job_arguments(ctx, options, out),
                epochs=options.qat_epochs,
                learning_rate=options.learning_rate_or(QAT_LEARNING_RATE),
                io=options.io,
                allow_select_ops=options.allow_select_ops,
            ),
        )
        flatbuffer = out.read_bytes()
    finally:
        out.unlink(missing_ok=True)
    check_integer_only(flatbuffer, options.io, "qat=tfmot", info.pop("layers"), keras3=False)
    return flatbuffer, None, info, []


def pruned(ctx, options):
    """``(model, file suffix, model.json extra, paths written)`` after pruning to ``options.prune``."""
    method = options.prune_method
    percent = int(round(options.prune * 100))
    model, info, keras_path = _fine_tune(
        ctx,
        options,
        pruning.train_pruned if method == "native" else tfmot_jobs.prune,
        f"pruned{percent}_{method}.keras",
        _backend(ctx, options) if method == "native" else None,
        target=options.prune,
        epochs=options.prune_epochs,
        learning_rate=options.learning_rate_or(LEARNING_RATE),
    )
    info.update(float=_evaluate(ctx, ctx.model), pruned=_evaluate(ctx, model))
    suffix = f"-pruned{percent}" + ("-tfmot" if method == "tfmot" else "")
    return model, suffix, {"pruning": info}, [keras_path]


def clustered(ctx, options):
    """``(model, file suffix, model.json extra, paths written)`` after clustering each kernel to
    ``options.clusters`` values (tfmot)."""
    clusters = options.clusters
    model, info, keras_path = _fine_tune(
        ctx,
        options,
        tfmot_jobs.cluster,
        f"clustered{clusters}.keras",
        None,
        clusters=clusters,
        epochs=options.cluster_epochs,
        learning_rate=options.learning_rate_or(QAT_LEARNING_RATE),
    )
    info.update(float=_evaluate(ctx, ctx.model), clustered=_evaluate(ctx, model))
    return model, f"-clustered{clusters}", {"clustering": info}, [keras_path]


def _fine_tune(ctx, options, job, file_name, backend, **settings):
    """Run ``job`` on the run's model, under ``backend`` (None: in a tfmot process), saving the
    fine-tuned model as ``file_name`` beside the exports; ``(that model, job's summary, its path)``."""
    keras_path = ctx.out_dir / file_name
    kwargs = dict(_job_arguments(ctx, options, keras_path), **settings)
    info = in_tfmot_process(job, kwargs) if backend is None else in_backend(backend, job, kwargs)
    return qat.load(keras_path, ctx.run.get("custom_modules", ())), info, keras_path


def _job_arguments(ctx, options, out):
    return dict(run_dir=str(ctx.run_dir.resolve()), out=str(out), seed=options.seed)


def _backend(ctx, options):
    """The backend fine-tuning runs under: ``finetune_backend``, else the run's."""
    return options.finetune_backend or ctx.run.get("training", {}).get("backend")


def _evaluate(ctx, model):
    return tuning.evaluate(model, ctx.dataset, ctx.run.get("spec", {}).get("task"))
