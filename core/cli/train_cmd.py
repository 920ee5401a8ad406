import sys
from pathlib import Path

import click

from core.cli.export_cmd import export_and_report
from core.cli.options import backend_option, pairs_option, track_option
from core.engine.config import load_config
from core.engine.options import AUGMENT, DISTRIBUTE, JIT, OPTIMIZERS, PRECISIONS, SCHEDULES
from core.engine.options import flag as flag_name
from core.engine.training import train
from core.files import read_json, write_json
from core.params import parse_pairs
from core.runs import RUN_FILE
from core.runs.catalog import parameters_trained

# Training flags: (flag, type, help). Each maps to a field of core.engine.options.TrainingOptions; values
# are checked there, so the CLI, config files and the Python API report errors the same way.
TRAINING_FLAGS = [
    ("--epochs", int, "Epochs (default 10)."),
    ("--batch-size", int, "Mini-batch size (default 32)."),
    ("--steps-per-epoch", int, "Cap the batches per epoch (quick checks)."),
    (
        "--steps-per-execution",
        int,
        "Batches per compiled call, fewer Python round trips: TensorFlow and JAX (default 1; torch runs 1 only).",
    ),
    ("--optimizer", str, f"{' | '.join(OPTIMIZERS)} (default adam)."),
    ("--learning-rate", float, "Peak learning rate (default 1e-3)."),
    ("--weight-decay", float, "Decoupled weight decay (adamw default 1e-4)."),
    ("--momentum", float, "SGD momentum (default 0.9)."),
    ("--nesterov/--no-nesterov", bool, "SGD with Nesterov momentum."),
    ("--schedule", str, f"{' | '.join(SCHEDULES)} (default constant)."),
    ("--warmup", float, "Linear warm-up: a fraction of all steps (< 1) or a step count."),
    ("--clip-norm", float, "Clip each gradient to this norm."),
    ("--label-smoothing", float, "Label smoothing for classification (e.g. 0.1)."),
    ("--early-stopping", int, "Stop after this many epochs without improvement; keep the best weights."),
    ("--monitor", str, "Metric for early stopping and best.keras (default val_loss)."),
    ("--augment", str, f"Comma-separated, training batches only: {', '.join(AUGMENT)}."),
    ("--precision", str, f"{' | '.join(PRECISIONS)} (default float32)."),
    ("--jit", str, f"{' | '.join(JIT)}: XLA on TensorFlow/JAX, torch.compile on torch (default auto)."),
    ("--checkpoint-every", int, "Epochs between checkpoints for --resume (default 1; 0: none)."),
    ("--tensorboard/--no-tensorboard", bool, "Write TensorBoard logs to RUN_DIR/tensorboard."),
    ("--fine-tune-after", int, "With --freeze backbone: after N epochs unfreeze all, go on at a lower rate."),
    ("--fine-tune-factor", float, "The fine-tuning learning rate: the rate times this (default 0.1)."),
    (
        "--standardize-targets/--no-standardize-targets",
        bool,
        "Regression: learn targets standardized on the training split; the model scales them back (default on).",
    ),
    (
        "--distribute",
        str,
        f"{' | '.join(DISTRIBUTE)}: data = all devices (jax DataParallel, TF "
        "MirroredStrategy; torch: one device); model = jax ModelParallel.",
    ),
    ("--processes", int, "With --distribute data: train in N local processes, --batch-size divided among them."),
    (
        "--sync-batchnorm/--no-sync-batchnorm",
        bool,
        "Several processes: BatchNorm normalizes by the global batch's moments, as one process does, "
        "at one blocking collective per layer and step (default off: each process's part, as torch "
        "DDP and tf.distribute do).",
    ),
]


def training_options(func):
    for flag, kind, text in reversed(TRAINING_FLAGS):
        name = flag.split("/")[0][2:].replace("-", "_")
        func = click.option(flag, name, default=None, help=text, type=None if kind is bool else kind)(func)
    return func


@click.command("train")
@click.option("--arch", default=None, metavar="NAME", help="Architecture (see kerastack plugins).")
@click.option("--data", default=None, metavar="NAME", help="Dataset (see kerastack plugins).")
@backend_option
@pairs_option("--hp", "an architecture hyperparameter")
@pairs_option("--data-opt", "a dataset option")
@click.option("--callback", "callbacks", multiple=True, metavar="NAME", help="Add a plugin callback (repeatable).")
@click.option("--out", default=None, metavar="RUN_DIR", help="Run directory (default: runs/ARCH-DATA-TIME).")
@click.option("--seed", default=None, type=int, help="Random seed (default: random, recorded in run.json).")
@training_options
@click.option(
    "--init-from", default=None, metavar="RUN_DIR", help="Start from another run's weights (matching layers)."
)
@click.option(
    "--freeze", default=None, metavar="WHAT", help="none (fine-tune all) or backbone (train only the new head)."
)
@click.option(
    "--lora-rank", default=None, type=int, help="Train LoRA adapters of this rank on pretrained Dense/Embedding layers."
)
@click.option("--resume", default=None, metavar="RUN_DIR", help="Continue an interrupted run from its last checkpoint.")
@track_option
@click.option(
    "--config",
    "config_path",
    default=None,
    metavar="FILE",
    help="A run.toml, or a run's run.json (or its directory) to reproduce it; flags override it.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.pass_obj
def command(
    host,
    arch,
    data,
    backend,
    pairs_hp,
    pairs_data_opt,
    callbacks,
    out,
    seed,
    init_from,
    freeze,
    lora_rank,
    resume,
    track,
    config_path,
    quiet,
    **flags,
):
    """Train ARCH on DATA and write a run directory.

    \b
    Example:
      kerastack train --arch cnn --data digits --backend jax --epochs 20 \\
          --optimizer adamw --schedule cosine --warmup 0.1 --early-stopping 5
      ...
      run: runs/cnn-digits-20261121-101500
      val_accuracy 0.9815  test_accuracy 0.9778  (20 epochs, jax, 31.0 s, 19,210 of 19,658 parameters trained)
    """
    # A progress bar is for a terminal; in a log, CI or `| tee` it is escape codes: one line per epoch.
    verbose = 0 if quiet else ("auto" if sys.stdout.isatty() else 2)
    if resume:
        given = {
            "--arch": arch,
            "--data": data,
            "--backend": backend,
            "--hp": pairs_hp,
            "--data-opt": pairs_data_opt,
            "--callback": callbacks,
            "--out": out,
            "--seed": seed,
            "--init-from": init_from,
            "--freeze": freeze,
            "--lora-rank": lora_rank,
            "--track": track,
            "--config": config_path,
            **{flag_name(k): v for k, v in flags.items()},
        }
        run, exports = _resume(resume, given, verbose), []
    else:
        config = load_config(config_path, plugins=host.extra) if config_path else {}
        cli = dict(arch=arch, data=data, backend=backend, callbacks=callbacks, out=out, seed=seed, track=track)
        transfer = dict(init_from=init_from, freeze=freeze, lora_rank=lora_rank)
        run = _train(host, config, cli, transfer, pairs_hp, pairs_data_opt, flags, verbose)
        exports = config.get("export", [])
    _summary(run)
    for item in exports:
        options = dict(item.get("options", {}))
        export_and_report(run.path, item["to"], options, plugins=list(host.extra) or None)
        _record_export(run.path, item["to"], options)


def _record_export(run_dir, to, options):
    """Add an export the config asked for to run.json's ``exports`` (written whole, atomically), so
    that ``--config RUN/run.json`` exports again."""
    path = Path(run_dir) / RUN_FILE
    record = read_json(path, "run record")
    record.setdefault("exports", []).append({"to": to, "options": options})
    write_json(path, record)


def _resume(resume, given, verbose):
    clash = [name for name, value in given.items() if value not in (None, ())]
    if clash:
        raise click.UsageError(
            f"--resume continues a run with the settings in its run.json; it takes no {', '.join(clash)}"
        )
    return train(resume=resume, verbose=verbose)


def _train(host, config, cli, transfer, pairs_hp, pairs_data_opt, flags, verbose):
    """A new run from the flags, each flag overriding the config file's value."""
    arch, data = cli["arch"] or config.get("arch"), cli["data"] or config.get("data")
    if not arch or not data:
        raise click.UsageError("--arch and --data are required (or --config FILE, or --resume RUN_DIR)")
    flags = {k: v for k, v in flags.items() if v is not None}
    if isinstance(flags.get("augment"), str):
        flags["augment"] = tuple(s.strip() for s in flags["augment"].split(",") if s.strip())
    configured = config.get("transfer", {})
    return train(
        arch,
        data,
        backend=cli["backend"] or config.get("backend"),
        hparams={**config.get("hparams", {}), **parse_pairs(pairs_hp, "--hp")},
        data_options={**config.get("data_options", {}), **parse_pairs(pairs_data_opt, "--data-opt")},
        callbacks=cli["callbacks"] or tuple(config.get("callbacks", ())),
        out=cli["out"] or config.get("out"),
        seed=cli["seed"] if cli["seed"] is not None else config.get("seed"),
        plugins=list(host.extra) + [p for p in config.get("plugins", []) if p not in host.extra],
        verbose=verbose,
        init_from=transfer["init_from"] or configured.get("init_from"),
        freeze=transfer["freeze"] or configured.get("freeze", "none"),
        lora_rank=transfer["lora_rank"] if transfer["lora_rank"] is not None else configured.get("lora_rank"),
        track={**config.get("track", {}), "to": cli["track"]} if cli["track"] else config.get("track"),
        **{**config.get("training", {}), **flags},
    )


def _summary(run):
    m = run.metrics
    held_out = {k: v for k, v in m.items() if k.startswith(("val_", "test_"))}
    counts = ("epochs", "seconds", "trainable_params", "total_params")
    # No validation or test split: the training metrics are all there is to show.
    shown = held_out or {k: v for k, v in m.items() if k not in counts and isinstance(v, float)}
    shown = "  ".join(f"{k} {v:.4f}" for k, v in shown.items())
    click.echo(f"run: {run.path}")
    click.echo(
        f"{shown}  ({_count(m.get('epochs'), 'epoch')}, {m.get('backend')}, {m.get('seconds', 0):.1f} s, "
        f"{parameters_trained(m, run.record)})"
    )


def _count(n, noun):
    """``"1 epoch"``, ``"3 epochs"``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
