"""``onnx``: an ONNX model (ONNX Runtime, TensorRT, OpenVINO, browsers), checked on ONNX Runtime.

Keras's own exporter (``model.export(format="onnx")``) converts through ``tf2onnx`` in a TensorFlow
process (the core starts one whatever the training backend). ``model.onnx`` is written atomically;
then ONNX Runtime runs it on the run's evaluation split and the result goes to ``verify.json``.

Needs the packages ``onnx`` and ``tf2onnx`` (and ``onnxruntime`` to verify); they are optional, so a
missing one is named in a one-line error.
"""

from core import hookimpl

NAME = "onnx"
FILE = "model.onnx"
# (module, pip requirement) — the pins tested with this project's stack
CONVERT = (("tf2onnx", "tf2onnx==1.17.0"), ("onnx", "onnx==1.23.2"))
RUNTIME = ("onnxruntime", "onnxruntime==1.31.1")


@hookimpl
def register_exporters(register):
    register(
        NAME,
        export,
        backend="tensorflow",
        summary="ONNX model via tf2onnx, checked on ONNX Runtime (needs tf2onnx, onnx, onnxruntime)",
    )


def export(ctx, opset=0, verify=True, verify_samples=1000):
    """Write ``model.onnx`` (``opset``: the ONNX opset, 0 for the converter's default) and, with
    ``verify``, ``verify.json`` (``verify_samples``: at most this many evaluation samples, 0 for all)."""
    import warnings

    from core import KerastackError, UsageError, atomic_path, one_line, record_result, single_input_signature

    if opset < 0:
        raise UsageError(f"exporter {NAME!r}: opset must be 0 (default) or an ONNX opset number, got {opset}")
    _require(*CONVERT, *([RUNTIME] if verify else []), verify=verify)
    signature = single_input_signature(ctx.model, NAME)
    path = ctx.out_dir / FILE
    with atomic_path(path) as tmp:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # Keras's numpy-2 patch of tf2onnx
                ctx.model.export(
                    str(tmp), format="onnx", verbose=False, input_signature=signature, opset_version=opset or None
                )
        except Exception as exc:
            raise KerastackError(f"exporter {NAME!r}: conversion failed: {one_line(exc, first=True)}") from exc
        result = check(tmp, ctx, verify_samples) if verify else None
    return [path] if result is None else [path, record_result(path, result)]


def check(path, ctx, samples=1000):
    """Run the ONNX model at ``path`` on ONNX Runtime (1 thread) and compare it with ``ctx.model``."""
    import numpy as np
    import onnxruntime

    from core import check_export

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    (first,) = session.get_inputs()
    dtype = np.dtype(ctx.model.inputs[0].dtype)
    return check_export(
        ctx,
        lambda inputs: session.run(None, inputs)[0],
        samples,
        feed=lambda x: {first.name: np.asarray(x, dtype=dtype)},
        latency_runs=200,
        threads=1,
        runtime=f"onnxruntime {onnxruntime.__version__}",
    )


def _require(*packages, verify):
    import importlib.util

    from core import KerastackError

    missing = [(module, pin) for module, pin in packages if importlib.util.find_spec(module) is None]
    if missing:
        names = ", ".join(module for module, _ in missing)
        hint = " (or --opt verify=false to skip ONNX Runtime)" if missing == [RUNTIME] and verify else ""
        raise KerastackError(
            f"exporter {NAME!r} needs the package(s) {names}: pip install {' '.join(pin for _, pin in missing)}{hint}"
        )
