"""``keras``: a portable ``model.keras`` of the deployable model, with a ``model.json`` that says what it is.

The copy holds the inference model only (a GAN's generator, not the pair) without optimizer state,
so it is smaller than the run's ``model.keras`` and loads under any backend with
``keras.saving.load_model``. ``model.json`` records what a user of the file needs and cannot read
from it: the architecture and dataset with their options, task, class names, input and output
tensors, the modules that define custom layers, the run's test metrics and the package versions.
Runs in whatever backend is at hand; the reloaded copy is compared with the model (``verify.json``).
"""

from core import hookimpl

NAME = "keras"
FILE = "model.keras"


@hookimpl
def register_exporters(register):
    register(NAME, export, summary="portable model.keras (inference model, no optimizer) + model.json")


def export(ctx, include_optimizer=False, verify=True, verify_samples=1000):
    """Write ``model.keras`` and ``model.json``; with ``verify`` also ``verify.json``.

    ``include_optimizer``: keep the compiled state (to fine-tune the copy later).
    ``verify_samples``: at most this many evaluation samples, 0 for all.
    """
    from core import atomic_path, record_result, write_json

    model = ctx.model if include_optimizer else _without_training_state(ctx.model)
    path = ctx.out_dir / FILE
    with atomic_path(path) as tmp:
        model.save(tmp)
        result = check(tmp, ctx, verify_samples) if verify else None
    written = [path, write_json(ctx.out_dir / "model.json", describe(ctx, path, model))]
    if result is not None:
        written.append(record_result(path, result))
    return written


def _without_training_state(model):
    """A copy of ``model`` with the same weights and no optimizer, loss or metrics.

    Not ``keras.models.clone_model``: it compiles the clone like the original, optimizer included.
    """
    try:
        copy = type(model).from_config(model.get_config())
        copy.set_weights(model.get_weights())
    except Exception:
        return model  # a model that does not clone (an unusual subclass) is saved as it is
    return copy


def check(path, ctx, samples=1000):
    """Reload ``path`` the way a user would (safe mode) and compare it with ``ctx.model``."""
    from core import check_export, load_model

    # A frozen or LoRA KerasHub model saved with its optimizer needs its run.json transfer to load it.
    again = load_model(path, ctx.run.get("custom_modules", ()), transfer=ctx.run.get("transfer"))
    return check_export(ctx, again.predict_on_batch, samples)


def describe(ctx, path, model):
    """What ``model.json`` says about the exported file."""
    import keras

    from core import package_versions

    run, spec = ctx.run, ctx.run.get("spec", {})
    metrics = {}
    metrics_path = ctx.run_dir / "metrics.json"
    if metrics_path.exists():
        from core import read_json

        metrics = {
            k: v
            for k, v in read_json(metrics_path, "metrics file").items()
            if k.startswith("test_") and isinstance(v, (int, float))
        }
    return {
        "format": "kerastack-keras/1",
        "task": spec.get("task"),
        "input_shape": spec.get("input_shape"),
        "class_names": spec.get("class_names"),
        "num_classes": spec.get("num_classes"),
        "architecture": run.get("architecture", {}),
        "dataset": run.get("dataset", {}),
        "source_run": str(ctx.run_dir.resolve()),
        "trained_backend": run.get("training", {}).get("backend"),
        "custom_modules": run.get("custom_modules", []),
        "test_metrics": metrics,
        "exported_backend": keras.backend.backend(),
        "versions": package_versions(),
        **{
            k: getattr(ctx.dataset, k)
            for k in ("vocabulary", "tokenizer", "preprocessing")
            if getattr(ctx.dataset, k, None) is not None
        },
        "files": {
            path.name: {
                "size_bytes": path.stat().st_size,
                "params": int(model.count_params()),
                "optimizer": getattr(model, "optimizer", None) is not None,
                "inputs": [_tensor(t) for t in model.inputs],
                "outputs": [_tensor(t, name) for t, name in zip(model.outputs, _output_names(model))],
            }
        },
    }


def _output_names(model):
    """The output layers' names ("probabilities"), not the graph's generated tensor names."""
    names = list(getattr(model, "output_names", None) or [])
    return names if len(names) == len(model.outputs) else [t.name for t in model.outputs]


def _tensor(tensor, name=None):
    return {
        "name": name or tensor.name,
        "shape": [None if d is None else int(d) for d in tensor.shape],
        "dtype": str(tensor.dtype),
    }
