"""Train one architecture under TensorFlow, JAX and PyTorch, and compare them.

    python examples/three_backends.py [--arch cnn] [--data digits] [--epochs 5]

The first backend runs in this process; kerastack runs the others in child processes (Keras fixes
its backend at import). Every run also exports to TFLite from a TensorFlow process and is verified
on the LiteRT runtime, so the table shows that all three reach the edge.
"""

import argparse
import tempfile
from pathlib import Path

from core import export, train, verify


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="cnn")
    parser.add_argument("--data", default="digits")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--out", default=None, help="where the runs go (default: a temporary folder)")
    args = parser.parse_args()
    root = Path(args.out or tempfile.mkdtemp(prefix="three-backends-"))

    rows = []
    for backend in ("tensorflow", "jax", "torch"):
        run = train(args.arch, args.data, backend=backend, epochs=args.epochs, seed=0, out=root / backend, verbose=0)
        lite = export(run.path, "tflite", {"quantize": "int8"})[0]
        checked = verify(lite, run.path, plugins=None)
        rows.append(
            (
                backend,
                run.metrics["val_accuracy"],
                run.metrics["seconds"] / run.metrics["epochs"],
                checked["tflite_accuracy"],
                checked["agreement"],
            )
        )

    print(f"{'backend':<11} {'val acc':>8} {'s/epoch':>8} {'int8 acc':>9} {'agreement':>10}")
    for backend, acc, seconds, lite_acc, agreement in rows:
        print(f"{backend:<11} {acc:>8.4f} {seconds:>8.2f} {lite_acc:>9.4f} {agreement:>10.4f}")
    print(f"runs in {root}")


if __name__ == "__main__":
    main()
