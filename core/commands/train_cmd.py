import click

from ..params import parse_pairs
from ..training import train
from .options import backend_option, pairs_option


@click.command("train")
@click.option("--arch", required=True, metavar="NAME", help="Architecture (see kerastack plugins).")
@click.option("--data", required=True, metavar="NAME", help="Dataset (see kerastack plugins).")
@backend_option
@click.option("--epochs", default=10, show_default=True, type=int)
@click.option("--batch-size", default=32, show_default=True, type=int)
@click.option("--steps-per-epoch", default=None, type=int, help="Cap the batches per epoch (quick checks).")
@pairs_option("--hp", "an architecture hyperparameter")
@pairs_option("--data-opt", "a dataset option")
@click.option("--callback", "callbacks", multiple=True, metavar="NAME", help="Add a plugin callback (repeatable).")
@click.option("--out", default=None, metavar="RUN_DIR", help="Run directory (default: runs/ARCH-DATA-TIME).")
@click.option("--seed", default=None, type=int, help="Random seed (default: random, recorded in run.json).")
@click.option("--learning-rate", "--lr", default=None, type=float, help="Optimizer learning rate (default 1e-3).")
@click.option("--init-from", default=None, metavar="RUN_DIR", help="Start from another run's weights (matching layers).")
@click.option("--freeze", default="none", metavar="WHAT", help="none (fine-tune all) or backbone (train only the new head).")
@click.option("--lora-rank", default=None, type=int, help="Train LoRA adapters of this rank on pretrained Dense/Embedding layers.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.pass_obj
def command(host, arch, data, backend, epochs, batch_size, steps_per_epoch, pairs_hp, pairs_data_opt,
            callbacks, out, seed, learning_rate, init_from, freeze, lora_rank, quiet):
    """Train ARCH on DATA and write a run directory.

    \b
    Example:
      kerastack train --arch cnn --data digits --backend jax --epochs 5 --hp filters=32
      ...
      run: runs/cnn-digits-20261121-101500
      val_accuracy 0.974  test_accuracy 0.970  (5 epochs, jax, 12.3 s)
    """
    run = train(arch, data, backend=backend, epochs=epochs, batch_size=batch_size,
                hparams=parse_pairs(pairs_hp, "--hp"), data_options=parse_pairs(pairs_data_opt, "--data-opt"),
                callbacks=callbacks, out=out, seed=seed, plugins=host.extra, verbose=0 if quiet else "auto",
                steps_per_epoch=steps_per_epoch, learning_rate=learning_rate, init_from=init_from,
                freeze=freeze, lora_rank=lora_rank)
    m = run.metrics
    shown = "  ".join(f"{k} {v:.4f}" for k, v in m.items() if k.startswith(("val_", "test_")))
    click.echo(f"run: {run.path}")
    click.echo(f"{shown}  ({m.get('epochs')} epochs, {m.get('backend')}, {m.get('seconds', 0):.1f} s, "
               f"{m.get('trainable_params'):,} of {m.get('total_params'):,} parameters trained)")
