import contextlib
import time

import click

from core.cli.options import backend_option, track_option
from core.deploy.compare import keras_latency, keras_weights
from core.deploy.export import export
from core.deploy.verify import verify
from core.engine.training import train
from core.files import format_size

ARCH, DATA = "cnn", "digits"


@click.command("run")
@backend_option
@click.option("--epochs", default=15, show_default=True, type=int)
@click.option("--out", default=None, metavar="RUN_DIR", help="Run directory (default: runs/cnn-digits-TIME).")
@click.option("--seed", default=0, show_default=True, type=int)
@track_option
@click.pass_obj
def command(host, backend, epochs, out, seed, track):
    """The main job: train cnn on digits, export float32 and int8 TFLite, verify both.

    \b
    Example:
      kerastack run
      ...
      model              accuracy      size   p50 latency
      keras (tensorflow)   0.9741  256.1 KiB      1.912 ms
      tflite float32       0.9741   80.2 KiB      0.013 ms
      tflite int8          0.9704   26.3 KiB      0.011 ms

    With --track mlflow the whole job is one MLflow run: the training's parameters, metrics and
    files, then both exports and each verify's numbers (see kerastack train --track).
    """
    started = time.perf_counter()
    with _stage(f"training {ARCH} on {DATA}"):
        run = train(
            ARCH, DATA, backend=backend, epochs=epochs, out=out, seed=seed, plugins=host.extra, verbose=2, track=track
        )
    with _stage("keras latency"):
        rows = [
            (
                f"keras ({run.backend})",
                run.metrics.get("test_accuracy"),
                keras_weights(run.path)["bytes"],  # what the files are made from, not the optimizer's state
                keras_latency(run.path)[0],
            )
        ]
    for quantize in ("none", "int8"):
        variant = "float32" if quantize == "none" else quantize
        with _stage(f"export {variant}"):
            paths = export(run.path, "tflite", {"quantize": quantize}, plugins=host.extra)
        lite = next(p for p in paths if p.suffix == ".tflite")
        with _stage(f"verify {variant}"):
            r = verify(lite, run.path, plugins=host.extra)
        rows.append((f"tflite {variant}", r["tflite_accuracy"], r["size_bytes"], r["latency_ms_p50"]))
    click.echo(f"\nrun: {run.path}  ({time.perf_counter() - started:.0f} s)")
    click.echo(f"{'model':<20} {'accuracy':>8} {'size':>11} {'p50 latency':>13}")
    for name, acc, size, latency in rows:
        click.echo(f"{name:<20} {acc:>8.4f} {format_size(size, 'KiB'):>11} {latency:>10.3f} ms")
    click.echo(
        f"size: keras = its weights in float32 (model.keras, {format_size(run.model_path.stat().st_size, 'KiB')}, "
        "also holds the optimizer's state); "
        "p50 latency of one sample, measured as in the export report: Keras predict_on_batch in this "
        f"process ({run.backend}), LiteRT invoke() at 1 thread"
    )


@contextlib.contextmanager
def _stage(name):
    """One line when a stage of the main job is done, with how long it took: a new user sees what
    the job is doing between the training's epochs and the table."""
    started = time.perf_counter()
    yield
    click.echo(f"done: {name} ({time.perf_counter() - started:.1f} s)")
