"""From training to a device: train, quantize to int8, and run the .tflite with only numpy and LiteRT.

    python examples/edge.py [--epochs 10]

The last step is what a phone or a Raspberry Pi runs: copy RUN/export/tflite/ and the tflite/
folder, `pip install -r tflite/requirements.txt`, then `python -m tflite model_int8.tflite ...`.
"""

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from core import export, train, verify


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="edge-"))

    run = train("cnn", "digits", epochs=args.epochs, seed=0, out=root / "run", verbose=0)
    lite = [p for p in export(run.path, "tflite", {"quantize": "int8"}) if p.suffix == ".tflite"][0]
    checked = verify(lite, run.path)
    print(
        f"keras accuracy {checked['keras_accuracy']:.4f}, int8 accuracy {checked['tflite_accuracy']:.4f}, "
        f"{checked['size_bytes'] / 1024:.1f} KiB, p50 {checked['latency_ms_p50']:.3f} ms"
    )

    # Five test images, as a device would receive them.
    from plugins.datasets.digits import load

    x, y = load().test
    np.save(root / "five.npy", x[:5])
    print("true labels:", " ".join(str(v) for v in y[:5]))
    subprocess.run(
        [sys.executable, "-m", "tflite", str(lite), "--input", str(root / "five.npy"), "--top", "2"], check=True
    )
    subprocess.run([sys.executable, "-m", "tflite", str(lite), "--bench", "200", "--threads", "1"], check=True)


if __name__ == "__main__":
    main()
