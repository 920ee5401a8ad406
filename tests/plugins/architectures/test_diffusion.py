"""``diffusion``: the DDPM learns (its denoising loss falls) and ``kerastack sample`` writes a real PNG
grid. (test_zoo.py trains, reloads and exports the denoiser, float32 and int8, under every backend.)"""

import struct
import zlib

import numpy as np
import pytest
from conftest import one_line_error, read_json, run_cli, run_python

pytestmark = pytest.mark.slow

TRAIN_JOB = """
import json, sys
import numpy as np
from core import train
from core.runs import inference_model
out = sys.argv[1]
run = train("diffusion", "digits", epochs=3, seed=0, out=out, verbose=0)
denoiser = inference_model(run.model)
json.dump({"history": run.history, "metrics": run.metrics, "record": run.record,
           "denoiser_inputs": [list(t.shape[1:]) for t in denoiser.inputs],
           "denoiser_output": list(denoiser.output.shape[1:]),
           "schedule": [run.model.steps, run.model.beta_start, run.model.beta_end]},
          open(out + "/report.json", "w"))
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("diffusion") / "run"
    run_python(TRAIN_JOB, out, env={"KERAS_BACKEND": "tensorflow"})
    return out, read_json(out / "report.json")


def test_denoising_loss_falls(trained):
    _, report = trained
    assert report["record"]["spec"]["task"] == "generation"
    losses = [row["loss"] for row in report["history"]]
    assert len(losses) == 3 and all(np.isfinite(losses))
    assert losses[-1] < 0.75 * losses[0], losses
    assert report["metrics"]["test_loss"] < report["history"][0]["val_loss"], report["metrics"]


def test_the_deployed_denoiser_takes_one_input_with_the_time_channel(trained):
    _, report = trained
    assert report["denoiser_inputs"] == [[8, 8, 2]]  # noisy image + normalized timestep
    assert report["denoiser_output"] == [8, 8, 1]  # predicted noise
    assert report["schedule"] == [1000, 0.0001, 0.02]


def test_sample_writes_a_png_grid(trained, tmp_path):
    run, _ = trained
    proc = run_cli("sample", run, "-n", "4", "--out", tmp_path / "grid.png")
    assert proc.returncode == 0, proc.stderr
    assert "4 images 8x8x1, 2x2 grid, 17x17 pixels" in proc.stdout
    width, height, color, pixels = read_png(tmp_path / "grid.png")
    assert (width, height, color) == (17, 17, 0)  # two 8-pixel tiles and a 1-pixel gap, greyscale
    tiles = [pixels[r : r + 8, c : c + 8] for r in (0, 9) for c in (0, 9)]
    assert all(t.std() > 0 for t in tiles)  # images, not blank tiles
    assert not list(tmp_path.glob(".*")), "temporary files left behind"


def test_sample_is_seeded_and_respaces_the_schedule(trained, tmp_path):
    run, _ = trained
    for name in ("a.png", "b.png"):
        proc = run_cli(
            "sample", run, "-n", "3", "--steps", "50", "--scale", "3", "--seed", "7", "--out", tmp_path / name
        )
        assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    width, height, _, _ = read_png(tmp_path / "a.png")
    assert (width, height) == (2 * 25 - 1, 2 * 25 - 1)  # 2x2 grid of 24-pixel tiles
    error = one_line_error(run_cli("sample", run, "--steps", "5000"), 2)
    assert "1000 steps" in error


def test_sample_refuses_what_is_not_a_generative_run(tmp_path):
    error = one_line_error(run_cli("sample", tmp_path / "nothing"), 1)
    assert "no such run directory" in error
    error = one_line_error(run_cli("sample", tmp_path, "--out", tmp_path / "grid.jpg"), 2)
    assert "PNG" in error


def read_png(path):
    """``(width, height, color_type, pixels)`` of an 8-bit, non-interlaced PNG, checking every CRC."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        assert struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])[0] == zlib.crc32(kind + body)
        chunks[kind] = chunks.get(kind, b"") + body
        pos += 12 + length
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert depth == 8 and interlace == 0 and b"IEND" in chunks
    channels = {0: 1, 2: 3, 6: 4}[color]
    raw = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), dtype="uint8").reshape(height, 1 + width * channels)
    assert not raw[:, 0].any()  # filter type 0 on every row
    return width, height, color, raw[:, 1:].reshape(height, width, channels)
