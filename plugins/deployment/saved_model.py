"""``saved_model``: a TensorFlow SavedModel (TF Serving, TF.js and other converters), checked on reload.

Written by Keras's own exporter (``model.export(format="tf_saved_model")``) in a TensorFlow process
(the core starts one when the run was trained under JAX or torch). The directory is written beside
its final name and renamed into place. Then it is loaded back with ``tf.saved_model.load`` and its
``serve()`` endpoint compared with Keras on the run's evaluation split: ``verify.json`` beside it.
"""

from core import hookimpl

NAME = "saved_model"


@hookimpl
def register_exporters(register):
    register(
        NAME,
        export,
        backend="tensorflow",
        summary="TensorFlow SavedModel with a serve() endpoint, reloaded and compared with Keras",
    )


def export(ctx, verify=True, verify_samples=1000):
    """Write ``saved_model/`` and, with ``verify``, ``verify.json`` (``verify_samples``: at most this
    many evaluation samples, 0 for all)."""
    import shutil
    import tempfile
    from pathlib import Path

    from core import KerastackError, one_line, record_result, single_input_signature

    signature = single_input_signature(ctx.model, NAME)
    target = ctx.out_dir / NAME
    tmp = Path(tempfile.mkdtemp(prefix=f".{NAME}.", dir=ctx.out_dir))
    try:
        try:
            ctx.model.export(str(tmp), format="tf_saved_model", verbose=False, input_signature=signature)
        except Exception as exc:
            raise KerastackError(f"exporter {NAME!r}: {one_line(exc, first=True)}") from exc
        result = check(tmp, ctx, verify_samples) if verify else None
        _replace_dir(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return [target] if result is None else [target, record_result(target, result)]


def check(path, ctx, samples=1000):
    """Load the SavedModel at ``path`` and compare ``serve()`` with ``ctx.model``."""
    import tensorflow as tf

    from core import check_export

    loaded = tf.saved_model.load(str(path))
    dtype = ctx.model.inputs[0].dtype
    return check_export(
        ctx,
        loaded.serve,
        samples,
        feed=lambda x: tf.constant(x, dtype=dtype),
        latency_runs=100,
        runtime=f"tensorflow {tf.__version__}",
    )


def _replace_dir(new, target):
    """Put directory ``new`` at ``target``, moving an old one aside first: ``target`` is never a
    half-written directory."""
    import os
    import shutil

    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(new, 0o777 & ~umask)  # mkdtemp made it private
    os.replace(new, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
