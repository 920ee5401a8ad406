"""Every built-in architecture, under the backend that exports it (make test; the GAN and VAE under
every backend) or under every backend (make test-all): trains two steps without NaN, reloads in a
TensorFlow process with the same outputs; each architecture, from one backend's run in turn, exports
to float32 and int8 TFLite with builtin ops only and runs on LiteRT. One process per backend for all
of them, plus one TensorFlow process.

The families' own tests (test_<family>.py) check what each learns; the checks below that need a
run under every backend (the GAN's and VAE's custom training steps) use this module's runs."""

import dataclasses

import numpy as np
import pytest
from conftest import TEST_ALL, read_json, run_cli, run_python

from core.backend import BACKENDS
from core.plugins import PluginHost
from core.testing import Case, check_architectures
from plugins.architectures.pretrained import BACKBONES

pytestmark = pytest.mark.slow

TOKENS = {"samples": 120}
CASES = [
    Case("mlp", "digits", {"units": (16,)}),
    Case("cnn", "digits", {"filters": 4, "dense": 8}),
    Case("resnet", "digits", {"width": 4, "stages": 2}),
    Case("mobilenet", "digits", {"alpha": 0.5, "filters": (8, 8), "blocks": (1, 1)}),
    Case("lstm", "waves", {"units": 8}, {"samples": 120, "length": 16}),
    Case("tcn", "waves", {"filters": 4, "levels": 2}, {"samples": 120, "length": 16}),
    Case("gru", "tokens", {"units": 8, "bidirectional": True}, TOKENS),
    Case("transformer", "tokens", {"dim": 16, "heads": 2, "blocks": 1, "mlp_dim": 16}, TOKENS),
    Case("vit", "digits", {"patch": 4, "dim": 16, "blocks": 1, "mlp_dim": 16}),
    Case("autoencoder", "digits", {"latent": 4, "filters": 4}),
    Case("autoencoder", "wine", {"latent": 4}),  # tabular inputs: a Dense autoencoder
    Case("vae", "digits", {"latent": 4, "filters": 4}),
    Case("diffusion", "digits", {"filters": 8, "embed_dim": 8, "steps": 50}),
    Case("gan", "digits", {"latent": 8, "filters": 8}, steps=4),
    Case("unet", "shapes", {"filters": 4}, {"task": "segmentation", "samples": 120}),
    Case("audio_cnn", "sounds", {"filters": 4, "mel_bins": 16}, {"samples": 40, "duration": 0.25}),
    Case("yolo", "shapes", {"filters": 8, "min_stride": 4}, {"task": "detection", "samples": 120, "size": 32}),
]
BY_ARCH = {c.arch: c for c in reversed(CASES)}  # the first case of each family
# make test trains each family under the one backend that exports it (they take turns), and the
# GAN and VAE, whose training steps are written per backend, under every one; make test-all
# (KERASTACK_TEST_ALL=1) trains every family under every backend.
EVERY_BACKEND = {"gan", "vae"}
if not TEST_ALL:
    CASES = [
        c if c.arch in EVERY_BACKEND else dataclasses.replace(c, backends=(BACKENDS[i % len(BACKENDS)],))
        for i, c in enumerate(CASES)
    ]
TRAINED = [(c, b) for c in CASES for b in BACKENDS if c.backends is None or b in c.backends]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return check_architectures(CASES, tmp_path_factory.mktemp("zoo"), backends=BACKENDS)


def run_dir(results, arch, backend):
    from pathlib import Path

    return Path(results[(BY_ARCH[arch].key, backend)]["run"])


def exported(results, arch):
    """The backend whose run of ``arch`` was exported, and its result."""
    key = BY_ARCH[arch].key
    [(backend, result)] = [(b, results[(key, b)]) for b in BACKENDS if results.get((key, b), {}).get("exported")]
    return backend, result


def test_every_builtin_architecture_is_covered():
    builtin = {
        e.name
        for e in PluginHost(entry_points=False).registry("architecture").entries.values()
        if e.plugin.origin == "built-in"
    }
    # The pretrained backbones have tests of their own: test_pretrained.py, test_hub.py,
    # test_hub_segmenters.py and test_retinanet.py.
    hub = {"hub_image_classifier", "hub_text_classifier", "deeplab_v3", "segformer", "retinanet"}
    pretrained = set(BACKBONES) | hub
    assert builtin - pretrained == {c.arch for c in CASES}


@pytest.mark.parametrize(("case", "backend"), TRAINED, ids=lambda v: getattr(v, "key", v))
def test_trains_reloads_and_exports(results, case, backend):
    r = results[(case.key, backend)]
    assert not r["errors"], r["errors"]
    assert r["reload_diff"] <= 1e-5
    if not r["exported"]:
        assert "tflite_none" not in r
        return
    for quantize in ("none", "int8"):
        lite = r[f"tflite_{quantize}"]
        assert not [op for op in lite["ops"] if op.startswith("Flex")], lite["ops"]
    assert r["tflite_none"]["max_abs_diff"] <= 1e-4
    assert "int8" in r["tflite_int8"]["dtypes"] and "int8" not in r["tflite_none"]["dtypes"]


def test_each_architecture_exports_once_and_every_backend_takes_a_turn(results):
    by_backend = {b: [c.key for c in CASES if results.get((c.key, b), {}).get("exported")] for b in BACKENDS}
    assert sorted(sum(by_backend.values(), [])) == sorted(c.key for c in CASES)
    assert all(len(keys) >= len(CASES) // len(BACKENDS) for keys in by_backend.values()), by_backend


@pytest.mark.parametrize("backend", BACKENDS)
def test_vae_logs_both_loss_terms(results, backend):
    run = run_dir(results, "vae", backend)
    metrics, record = read_json(run / "metrics.json"), read_json(run / "run.json")
    assert record["training"]["backend"] == backend
    terms = [metrics[k] for k in ("loss", "reconstruction_loss", "kl_loss", "val_loss", "test_loss")]
    assert np.all(np.isfinite(terms)), metrics
    assert metrics["kl_loss"] >= 0
    assert metrics["loss"] == pytest.approx(metrics["reconstruction_loss"] + metrics["kl_loss"], rel=1e-3)
    assert record["custom_modules"] == ["plugins.architectures.autoencoder.layers"]  # the family's own module
    outputs = np.load(run / "check_outputs.npy")  # the deployed decoder path: sigmoid images
    assert outputs.shape == (16, 8, 8, 1) and outputs.min() >= 0 and outputs.max() <= 1


def test_autoencoders_int8_stays_close(results):
    for arch in ("autoencoder", "vae"):  # digits: sigmoid outputs in [0, 1]; observed ~0.002
        assert exported(results, arch)[1]["tflite_int8"]["max_abs_diff"] < 0.05


@pytest.mark.parametrize("backend", BACKENDS)
def test_gan_step_logs_both_losses_under_each_backend(results, backend):
    run = run_dir(results, "gan", backend)
    metrics, record = read_json(run / "metrics.json"), read_json(run / "run.json")
    assert record["spec"]["task"] == "generation" and metrics["backend"] == backend
    names = ("d_loss", "g_loss", "val_d_loss", "val_g_loss", "test_d_loss", "test_g_loss")
    losses = [metrics[k] for k in names]
    assert np.all(np.isfinite(losses)), metrics
    # log 2 = 0.69 is the loss of a coin-flip discriminator; a few steps stay in that neighbourhood.
    assert 0.1 < metrics["g_loss"] < 5 and 0.1 < metrics["d_loss"] < 5, metrics
    images = np.load(run / "check_outputs.npy")  # the generator, from latent vectors
    assert images.shape == (16, 8, 8, 1)
    assert images.min() >= 0 and images.max() <= 1 and images.std() > 0


def test_int8_generators_follow_the_float_ones(results):
    """Calibrated on what a generator is fed (latent vectors, noisy images), not the dataset's images:
    the int8 GAN is within a few quantization steps of the float one, and the denoiser's predicted
    noise is off by under a tenth of its spread on average (observed 0.06-0.07)."""
    gan = exported(results, "gan")[1]["tflite_int8"]
    assert gan["max_abs_diff"] < 0.05, gan
    backend, diffusion = exported(results, "diffusion")
    denoiser = diffusion["tflite_int8"]
    spread = np.load(run_dir(results, "diffusion", backend) / "check_outputs.npy").std()
    assert denoiser["mean_abs_diff"] < 0.1 * spread, (denoiser, spread)


def test_diffusion_denoiser_exports_its_time_embedding(results):
    ops = set(exported(results, "diffusion")[1]["tflite_none"]["ops"])
    assert {"SIN", "COS", "CONV_2D"} <= ops


def test_reloaded_gan_is_compiled_with_both_optimizers(results):
    run_python(
        """
        import sys
        import numpy as np
        from core import load_run
        model = load_run(sys.argv[1]).model
        assert type(model).__name__ == "GAN" and model.compiled
        assert model.d_optimizer.iterations.numpy() == 4 == model.g_optimizer.iterations.numpy()
        assert model.generator.input_shape == (None, 8)
        a, b = model.generate(4, seed=3), model.generate(4, seed=3)
        assert a.shape == (4, 8, 8, 1) and np.array_equal(a, b)
    """,
        run_dir(results, "gan", "jax"),
        env={"KERAS_BACKEND": "tensorflow"},
    )


def test_sample_draws_from_a_torch_trained_gan(results, tmp_path):
    run = run_dir(results, "gan", "torch")
    proc = run_cli("sample", run, "-n", "6", "--out", tmp_path / "gan.png")
    assert proc.returncode == 0, proc.stderr
    assert "6 images 8x8x1, 2x3 grid, 26x17 pixels" in proc.stdout
    data = (tmp_path / "gan.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    assert int.from_bytes(data[16:20], "big") == 26 and int.from_bytes(data[20:24], "big") == 17
    proc = run_cli("sample", run, "--steps", "10")
    assert proc.returncode == 2 and "--steps applies to diffusion runs" in proc.stderr
