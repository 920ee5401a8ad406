"""Your own data, two ways: a CSV file through the built-in ``csv`` dataset, and a dataset plugin of
your own in a dozen lines.

    python examples/custom_dataset.py [--epochs 20]
"""

import argparse
import csv
import tempfile
from pathlib import Path

import numpy as np

from core import train

# 1. A dataset plugin is a function that returns core.Dataset, registered through a hook. Save it as a
#    .py file and pass --plugin FILE.py (or package it with an entry point in group "kerastack").
PLUGIN = """
from core import hookimpl


@hookimpl
def register_datasets(register):
    register("rings", load, summary="points on two noisy concentric rings")


def load(samples=800, noise=0.1, seed=0):
    from sklearn.datasets import make_circles
    from core import Dataset

    x, y = make_circles(n_samples=samples, noise=noise, factor=0.5, random_state=seed)
    x, y = x.astype("float32"), y.astype("int32")
    a, b = int(samples * 0.7), int(samples * 0.85)
    return Dataset(train=(x[:a], y[:a]), validation=(x[a:b], y[a:b]), test=(x[b:], y[b:]),
                   class_names=("inner", "outer"))
"""


def write_csv(path, rows=600, seed=0):
    """A table with numeric and categorical columns, some values missing, and a categorical target."""
    rng = np.random.default_rng(seed)
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["age", "income", "city", "bought"])
        for _ in range(rows):
            age, income = rng.integers(18, 80), rng.normal(50, 15)
            city = rng.choice(["paris", "lyon", "nice"])
            score = 0.04 * (age - 45) + 0.05 * (income - 50) + (0.8 if city == "paris" else 0)
            bought = "yes" if score + rng.normal(0, 0.5) > 0 else "no"
            out.writerow(["" if rng.random() < 0.05 else age, f"{income:.1f}", city, bought])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="custom-data-"))

    table = root / "customers.csv"
    write_csv(table)
    run = train(
        "mlp",
        "csv",
        data_options={"path": str(table), "target": "bought"},
        epochs=args.epochs,
        seed=0,
        out=root / "csv-run",
        verbose=0,
    )
    print(f"csv:   {run.record['spec']['class_names']}  test accuracy {run.metrics['test_accuracy']:.3f}")

    plugin = root / "rings_plugin.py"
    plugin.write_text(PLUGIN)
    run = train("mlp", "rings", plugins=[str(plugin)], epochs=args.epochs, seed=0, out=root / "rings-run", verbose=0)
    print(f"rings: {run.record['spec']['class_names']}  test accuracy {run.metrics['test_accuracy']:.3f}")
    print(f"runs in {root}")


if __name__ == "__main__":
    main()
