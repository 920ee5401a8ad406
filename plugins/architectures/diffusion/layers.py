"""The ``diffusion`` architecture's model and layer: :class:`Diffusion`, a DDPM around a denoiser,
and :class:`TimeEmbedding`, the denoiser's sinusoidal embedding of the timestep. The denoiser is
the deployed model: built-in layers plus :class:`TimeEmbedding`, so it exports to LiteRT like any
other. Image data is expected in [0, 1], as the built-in image datasets give it.
"""

import math

import keras
import numpy as np
from keras import layers, ops

from plugins.architectures._layers.parts import Parts, serializable


@serializable
class TimeEmbedding(layers.Layer):
    """Sinusoidal embedding of the diffusion timestep read from the input's last channel.

    The denoiser's input is the noisy image with τ = t / (steps - 1) broadcast as one extra channel;
    this layer reads τ at the first pixel (every pixel holds the same value, and stays so after
    per-tensor int8 quantization), and returns ``[sin(t·f_i), cos(t·f_i)]`` with t = τ·``scale`` for
    ``dim / 2`` frequencies f_i from 1 down to 1/10000, as in the Transformer's position encoding.
    ``scale·f_i`` is one constant, so every backend computes the angle with the same single rounding.
    """

    def __init__(self, dim=32, scale=1000.0, **kwargs):
        super().__init__(**kwargs)
        if dim < 2 or dim % 2:
            raise ValueError(f"TimeEmbedding dim must be an even number >= 2; got {dim}")
        self.dim = int(dim)
        self.scale = float(scale)
        half = self.dim // 2
        self._rates = (self.scale * np.exp(-math.log(10000.0) * np.arange(half) / half)).astype("float32")

    def call(self, x):
        tau = x[:, 0, 0, -1:]
        angles = tau * ops.convert_to_tensor(self._rates[None, :], dtype=tau.dtype)
        return ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.dim)

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "scale": self.scale}


def linear_schedule(steps, beta_start, beta_end):
    """``(betas, alphas_cumprod)`` of DDPM's linear schedule, float32 numpy arrays."""
    betas = np.linspace(beta_start, beta_end, steps, dtype="float64")
    return betas.astype("float32"), np.cumprod(1.0 - betas).astype("float32")


@serializable
class Diffusion(Parts, keras.Model):
    """A DDPM: ``denoiser`` predicts the noise ε in x_t = sqrt(ᾱ_t)·x0 + sqrt(1 - ᾱ_t)·ε.

    ``model(images)`` draws a timestep and noise per image (from the model's seed generator),
    noises the images (scaled from [0, 1] to [-1, 1]) and returns the denoiser's error ε̂ - ε;
    ``compute_loss`` is its mean square. Doing the noising in ``call`` keeps the default
    ``train_step`` (one forward pass, every backend). ``generate(n)`` runs the reverse process.
    """

    PARTS = ("denoiser",)

    def __init__(self, denoiser, steps=1000, beta_start=1e-4, beta_end=0.02, seed=None, **kwargs):
        super().__init__(**kwargs)
        if steps < 2:
            raise ValueError(f"diffusion needs at least 2 steps; got steps={steps}")
        if not 0 < beta_start <= beta_end < 1:
            raise ValueError(f"need 0 < beta_start <= beta_end < 1; got {beta_start}, {beta_end}")
        self.denoiser = denoiser
        self.steps = int(steps)
        self.beta_start = float(beta_start)
        self.beta_end = float(beta_end)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self._betas, self._alphas_cumprod = linear_schedule(self.steps, self.beta_start, self.beta_end)
        self.built = True

    def _with_time(self, x_t, t):
        """The denoiser's input: x_t with τ = t / (steps - 1) broadcast as the last channel."""
        tau = ops.cast(t, x_t.dtype) / (self.steps - 1)
        shape = ops.shape(x_t)
        time = ops.broadcast_to(ops.reshape(tau, (-1, 1, 1, 1)), (shape[0], shape[1], shape[2], 1))
        return ops.concatenate([x_t, time], axis=-1)

    def call(self, images, training=False):
        x0 = ops.cast(images, self.compute_dtype) * 2.0 - 1.0
        batch = ops.shape(x0)[0]
        t = keras.random.randint((batch,), 0, self.steps, seed=self.seed_generator)
        noise = keras.random.normal(ops.shape(x0), seed=self.seed_generator)
        alpha_bar = ops.reshape(ops.take(self._alphas_cumprod, t), (-1, 1, 1, 1))
        x_t = ops.sqrt(alpha_bar) * x0 + ops.sqrt(1.0 - alpha_bar) * noise
        return self.denoiser(self._with_time(x_t, t), training=training) - noise

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return ops.mean(ops.square(y_pred))

    def inference_model(self):
        """The denoiser: (noisy image ‖ τ channel) → predicted noise."""
        return self.denoiser

    def generate(self, n, seed=0, steps=None):
        """``n`` images in [0, 1] (numpy) from the reverse process x_T ~ N(0, I) → x_0.

        ``steps`` (default: all of the schedule's) evenly spaced timesteps are visited, the schedule
        respaced to them (β'_i = 1 - ᾱ_{s_i} / ᾱ_{s_{i-1}}, as in Nichol & Dhariwal 2021): fewer steps,
        faster sampling. Each step adds noise of the posterior variance β'_i (1 - ᾱ'_{i-1}) / (1 - ᾱ'_i).
        The denoiser runs through ``predict_on_batch`` (compiled once; eager calls were ~15 times
        slower here) and the update is numpy arithmetic with a numpy generator seeded by ``seed``:
        the same seed draws the same noise on every backend.
        """
        steps = self.steps if steps is None else int(steps)
        if not 1 <= steps <= self.steps:
            raise ValueError(f"steps must be in [1, {self.steps}]; got {steps}")
        timesteps = np.unique(np.round(np.linspace(0, self.steps - 1, steps)).astype("int64"))
        alpha_bar = [float(a) for a in self._alphas_cumprod[timesteps]]
        previous = [1.0, *alpha_bar[:-1]]
        rng = np.random.default_rng(seed)
        shape = (n, *self.denoiser.input_shape[1:-1], self.denoiser.input_shape[-1] - 1)
        x = rng.standard_normal(shape, dtype="float32")
        time = np.empty((*shape[:-1], 1), dtype="float32")
        for i in reversed(range(len(timesteps))):
            beta = 1.0 - alpha_bar[i] / previous[i]
            time[...] = timesteps[i] / (self.steps - 1)
            eps = np.asarray(self.denoiser.predict_on_batch(np.concatenate([x, time], axis=-1)))
            x = (x - beta / math.sqrt(1.0 - alpha_bar[i]) * eps) / math.sqrt(1.0 - beta)
            if i > 0:
                sigma = math.sqrt(beta * (1.0 - previous[i]) / (1.0 - alpha_bar[i]))
                x = x + sigma * rng.standard_normal(shape, dtype="float32")
        return np.clip((x + 1.0) / 2.0, 0.0, 1.0).astype("float32")

    def get_config(self):
        return {
            **super().get_config(),
            **self.parts_config(),
            "steps": self.steps,
            "beta_start": self.beta_start,
            "beta_end": self.beta_end,
            "seed": self.seed,
        }
