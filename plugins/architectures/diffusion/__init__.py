"""``diffusion``: a small DDPM for images, and ``kerastack sample`` to draw images from a run.

Training is plain ``fit`` on the dataset's images (task "generation", labels unused): the model
noises each image at a random timestep t of a linear beta schedule (``steps``, ``beta_start``,
``beta_end``; images scaled from [0, 1] to [-1, 1]) and learns to predict the noise with mean squared
error. The denoiser is a two-resolution U-Net with residual conv blocks; its one input is the noisy
image with the normalized timestep τ = t / (steps - 1) as an extra channel, ``(H, W, C + 1)``, from
which a sinusoidal time embedding conditions every block. That denoiser is the deployed
(TFLite) model; the sampling loop around it is plain arithmetic.

``kerastack sample RUN_DIR [-n N] [--out FILE.png] [--seed S] [--scale K] [--steps K]`` runs the
reverse process (or a GAN's generator) and writes the images as one grid PNG.

Its Keras classes (``Diffusion``, ``TimeEmbedding``) are in ``layers``, imported by ``build`` and, for
a saved model, before it loads: importing this package stays light.
"""

import math

import click

from core import hookimpl


@hookimpl
def register_architectures(register):
    register(
        "diffusion",
        build,
        tasks=("generation",),
        summary="DDPM: 2-level U-Net denoiser conditioned on a sinusoidal time embedding",
    )


@hookimpl
def register_commands(cli):
    cli.add_command(sample_command)


def build(spec, filters=32, embed_dim=32, steps=1000, beta_start=1e-4, beta_end=0.02, learning_rate=1e-3):
    """A :class:`Diffusion` around the U-Net denoiser, compiled with Adam (its loss is its own)."""
    import keras

    from plugins.architectures.diffusion.layers import Diffusion

    denoiser = build_denoiser(spec.input_shape, filters, embed_dim, steps)
    model = Diffusion(denoiser, steps=steps, beta_start=beta_start, beta_end=beta_end, name="diffusion")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate))
    return model


def build_denoiser(shape, filters, embed_dim, steps):
    """(noisy image ‖ τ) → predicted noise: full-resolution block, a stride-2 block, upsampling,
    skip concatenation, full-resolution block. Every block adds a projection of the time embedding."""
    import keras
    from keras import layers

    from plugins.architectures.diffusion.layers import TimeEmbedding

    if len(shape) != 3:
        raise ValueError(f"diffusion needs images (H, W, C); the dataset gives {tuple(shape)}")
    h, w, channels = shape
    if h % 2 or w % 2:
        raise ValueError(f"diffusion's U-Net halves the image once: H and W must be even; got {h}x{w}")
    inputs = keras.Input((h, w, channels + 1), name="noisy_image_and_time")
    emb = TimeEmbedding(embed_dim, scale=steps - 1, name="time_embedding")(inputs)
    emb = layers.Dense(embed_dim * 2, activation="swish")(emb)
    x = layers.Conv2D(filters, 3, padding="same")(inputs)
    skip = _block(x, filters, emb)
    x = layers.Conv2D(filters * 2, 3, strides=2, padding="same", activation="swish")(skip)
    x = _block(x, filters * 2, emb)
    x = layers.UpSampling2D(2)(x)
    x = layers.Concatenate()([x, skip])
    x = _block(x, filters, emb)
    outputs = layers.Conv2D(channels, 1, name="noise")(x)
    return keras.Model(inputs, outputs, name="denoiser")


def _block(x, filters, emb):
    from keras import layers

    h = layers.Conv2D(filters, 3, padding="same", activation="swish")(x)
    h = layers.Add()([h, layers.Reshape((1, 1, filters))(layers.Dense(filters)(emb))])
    h = layers.Conv2D(filters, 3, padding="same", activation="swish")(h)
    if x.shape[-1] != filters:
        x = layers.Conv2D(filters, 1)(x)
    return layers.Add()([x, h])


@click.command("sample")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option(
    "-n", "count", default=16, show_default=True, type=click.IntRange(1, 4096), metavar="N", help="How many images."
)
@click.option("--out", default=None, metavar="FILE.png", help="Where to write (default RUN_DIR/samples.png).")
@click.option(
    "--seed", default=0, show_default=True, type=int, help="Seed of the noise (the same images on every backend)."
)
@click.option("--scale", default=1, show_default=True, type=click.IntRange(1, 64), help="Enlarge each pixel K times.")
@click.option(
    "--steps",
    default=None,
    type=click.IntRange(1),
    metavar="K",
    help="Diffusion only: K evenly spaced denoising steps (default: the whole schedule).",
)
def sample_command(run_dir, count, out, seed, scale, steps):
    """Draw N images from a generative run (diffusion or gan) into a grid PNG.

    \b
    Example:
      kerastack sample runs/diffusion-digits-20261121-101500 -n 16 --out grid.png
      grid.png  16 images 8x8x1, 4x4 grid, 35x35 pixels
    """
    path, info = sample(run_dir, count, out, seed, scale, steps)
    click.echo(f"{path}  {info}")


def sample(run_dir, count=16, out=None, seed=0, scale=1, steps=None):
    """Generate ``count`` images with the run's model and write them as a grid PNG.

    Returns ``(path, description)``. The model must define ``generate(n, seed)`` (diffusion, gan);
    ``steps`` goes to a ``generate`` that takes it (diffusion's reverse process).
    """
    import inspect
    from pathlib import Path

    import numpy as np

    from core import KerastackError, UsageError, atomic_path, load_run, loaded_backend, use_backend

    path = Path(out) if out else Path(run_dir) / "samples.png"
    if path.suffix.lower() != ".png":
        raise UsageError(f"--out {path}: the grid is written as PNG; name the file *.png")
    run = load_run(run_dir)
    use_backend(loaded_backend() or run.backend)
    model = run.model
    arch = run.record.get("architecture", {}).get("name")
    generate = getattr(model, "generate", None)
    if not callable(generate):
        raise KerastackError(
            f"{run.path}: architecture {arch!r} does not generate images; kerastack sample needs a diffusion or gan run"
        )
    options = {}
    if steps is not None:
        if "steps" not in inspect.signature(generate).parameters:
            raise UsageError(f"--steps applies to diffusion runs; {run.path} is a {arch!r} run")
        if steps > getattr(model, "steps", steps):
            raise UsageError(f"--steps {steps}: the run's schedule has {model.steps} steps")
        options["steps"] = int(steps)
    images = np.asarray(generate(int(count), seed=int(seed), **options), dtype="float32")
    if images.ndim != 4 or images.shape[-1] not in (1, 3, 4):
        raise KerastackError(f"{run.path}: generated shape {images.shape} is not images with 1, 3 or 4 channels")
    grid = tile(images, scale)
    with atomic_path(path) as tmp:
        tmp.write_bytes(png_bytes(grid))
    n, h, w, c = images.shape
    rows, cols = grid_size(n)
    return path, f"{n} images {h}x{w}x{c}, {rows}x{cols} grid, {grid.shape[1]}x{grid.shape[0]} pixels"


def grid_size(n):
    cols = math.ceil(math.sqrt(n))
    return math.ceil(n / cols), cols


def tile(images, scale=1, gap=1):
    """``(n, H, W, C)`` floats in [0, 1] → one ``(rows·(H·scale + gap) - gap, cols·(...) - gap, C)``
    uint8 grid, tiles separated by ``gap`` mid-grey pixels."""
    import numpy as np

    n, h, w, c = images.shape
    rows, cols = grid_size(n)
    images = np.repeat(np.repeat(images, scale, axis=1), scale, axis=2)
    th, tw = h * scale, w * scale
    grid = np.full((rows * (th + gap) - gap, cols * (tw + gap) - gap, c), 128, dtype="uint8")
    pixels = np.round(np.clip(np.nan_to_num(images), 0.0, 1.0) * 255).astype("uint8")
    for i in range(n):
        r, col = divmod(i, cols)
        grid[r * (th + gap) : r * (th + gap) + th, col * (tw + gap) : col * (tw + gap) + tw] = pixels[i]
    return grid


def png_bytes(pixels):
    """An 8-bit PNG of ``pixels`` (uint8, ``(H, W, C)`` with C = 1 grey, 3 RGB or 4 RGBA), written
    with zlib and struct only."""
    import struct
    import zlib

    height, width, channels = pixels.shape
    color_type = {1: 0, 3: 2, 4: 6}[channels]

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    raw = b"".join(b"\x00" + pixels[row].tobytes() for row in range(height))  # filter 0 per row
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
