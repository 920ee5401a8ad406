"""Models and layers of the generative architectures (``vae``, ``diffusion``, ``gan``).

Each model holds its parts as functional sub-models and deploys one of them through
``inference_model()``: a single-input functional model made of built-in layers (plus
:class:`TimeEmbedding`), so it exports to LiteRT like any other. The classes train with ``fit`` under
TensorFlow, JAX and torch; their randomness comes from ``keras.random`` with a ``SeedGenerator``
held by the model, whose state is a model variable (saved, and threaded through JAX's stateless
steps). Image data is expected in [0, 1], as the built-in image datasets give it.
"""

import math

import keras
import numpy as np
from keras import layers, ops

serializable = keras.saving.register_keras_serializable(package="kerastack")


def downsamplings(shape, levels):
    """How many stride-2 halvings an (H, W, ...) image takes: at most ``levels``, while both sides
    are even and at least 4 (so a decoder doubling back restores the exact shape)."""
    h, w, n = shape[0], shape[1], 0
    while n < levels and h % 2 == 0 and w % 2 == 0 and min(h, w) >= 4:
        h, w, n = h // 2, w // 2, n + 1
    return n


def _serialize(model):
    return keras.saving.serialize_keras_object(model)


def _deserialize(config):
    return keras.saving.deserialize_keras_object(config)


# --------------------------------------------------------------------------------------------- VAE


@serializable
class VAE(keras.Model):
    """A variational autoencoder: ``encoder`` maps x to ``[z_mean, z_log_var]``, ``decoder`` maps z back.

    ``model(x, training=True)`` samples z = z_mean + exp(z_log_var / 2)·ε (ε from the model's seed
    generator) and adds the KL divergence to N(0, I) with ``add_loss``; otherwise z = z_mean.
    ``compute_loss`` adds the reconstruction term: the summed binary cross-entropy per sample when
    ``likelihood="bernoulli"`` (a sigmoid decoder, data in [0, 1]), else the summed squared error.
    """

    def __init__(self, encoder, decoder, beta=1.0, likelihood="bernoulli", seed=None, **kwargs):
        super().__init__(**kwargs)
        if likelihood not in ("bernoulli", "gaussian"):
            raise ValueError(f"likelihood must be 'bernoulli' or 'gaussian'; got {likelihood!r}")
        self.encoder = encoder
        self.decoder = decoder
        self.beta = float(beta)
        self.likelihood = likelihood
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_tracker = keras.metrics.Mean(name="kl_loss")
        self.built = True  # the parts are built functional models

    def call(self, x, training=False):
        z_mean, z_log_var = self.encoder(x, training=training)
        kl = -0.5 * ops.sum(1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)
        self.add_loss(self.beta * ops.mean(kl))
        z = z_mean
        if training:
            eps = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)
            z = z_mean + ops.exp(0.5 * z_log_var) * eps
        return self.decoder(z, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        y = x if y is None else y
        axes = tuple(range(1, len(y_pred.shape)))
        if self.likelihood == "bernoulli":
            per_value = ops.binary_crossentropy(ops.cast(y, y_pred.dtype), y_pred)
        else:
            per_value = ops.square(ops.cast(y, y_pred.dtype) - y_pred)
        reconstruction = ops.mean(ops.sum(per_value, axis=axes))
        kl = ops.zeros((), dtype=reconstruction.dtype)
        for loss in self.losses:  # the KL term from call(), and any regularizers
            kl = kl + loss
        self.reconstruction_tracker.update_state(reconstruction)
        self.kl_tracker.update_state(kl / self.beta if self.beta else kl)
        return reconstruction + kl

    def inference_model(self):
        """Deterministic reconstruction x → decoder(z_mean): one input of the data's shape. Its
        squared error to x is the anomaly score."""
        x = self.encoder.inputs[0]
        z_mean = self.encoder.outputs[0]
        return keras.Model(x, self.decoder(z_mean), name="vae_reconstruction")

    def get_config(self):
        return {
            **super().get_config(),
            "encoder": _serialize(self.encoder),
            "decoder": _serialize(self.decoder),
            "beta": self.beta,
            "likelihood": self.likelihood,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["encoder"] = _deserialize(config["encoder"])
        config["decoder"] = _deserialize(config["decoder"])
        return cls(**config)


# -------------------------------------------------------------------------------------- diffusion


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
class Diffusion(keras.Model):
    """A DDPM: ``denoiser`` predicts the noise ε in x_t = sqrt(ᾱ_t)·x0 + sqrt(1 - ᾱ_t)·ε.

    ``model(images)`` draws a timestep and noise per image (from the model's seed generator),
    noises the images (scaled from [0, 1] to [-1, 1]) and returns the denoiser's error ε̂ - ε;
    ``compute_loss`` is its mean square. Doing the noising in ``call`` keeps the default
    ``train_step`` (one forward pass, every backend). ``generate(n)`` runs the reverse process.
    """

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
            "denoiser": _serialize(self.denoiser),
            "steps": self.steps,
            "beta_start": self.beta_start,
            "beta_end": self.beta_end,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["denoiser"] = _deserialize(config["denoiser"])
        return cls(**config)


# -------------------------------------------------------------------------------------------- GAN


@serializable
class MinibatchStddev(layers.Layer):
    """Appends one channel holding the batch's mean standard deviation (Karras et al. 2018, ProGAN).

    A discriminator judging images one at a time cannot see that a generator makes the same image
    every time (mode collapse); with this statistic of the whole batch it can.
    """

    def call(self, x):
        spread = ops.mean(ops.std(x, axis=0))
        return ops.concatenate([x, ops.ones_like(x[..., :1]) * spread], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] + 1)


def _bce_logits(labels, logits):
    return ops.mean(ops.binary_crossentropy(labels, logits, from_logits=True))


@serializable
class GAN(keras.Model):
    """A GAN: ``generator`` (latent vector → image in [0, 1]) against ``discriminator`` (image → logit).

    Compile with ``d_optimizer`` and ``g_optimizer``. Each training step first updates the
    discriminator on real images and generated ones (non-saturating loss), then the generator
    against the updated discriminator; the logs are ``d_loss`` and ``g_loss``. Keras 3 train steps
    are backend-specific, so ``train_step``/``test_step`` dispatch to a TensorFlow (GradientTape),
    JAX (``stateless_call`` + ``jax.value_and_grad``, state returned) or torch (autograd) version.
    ``model(images)`` is the discriminator's logit; ``inference_model()`` is the generator.
    """

    def __init__(self, generator, discriminator, latent_dim, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = int(latent_dim)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.built = True

    def call(self, images, training=False):
        return self.discriminator(images, training=training)

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker]

    def compile(self, d_optimizer, g_optimizer, **kwargs):
        """Keras keeps one ``model.optimizer`` (its variables are what JAX's stateless training
        carries, and what is saved), so it is a ``MultiOptimizer`` over both; the steps call the
        two directly."""
        d_optimizer.build(self.discriminator.trainable_variables)
        g_optimizer.build(self.generator.trainable_variables)
        d_ids = {id(v) for v in self.discriminator.trainable_variables}
        both = keras.optimizers.MultiOptimizer(lambda v: d_optimizer if id(v) in d_ids else g_optimizer)
        both.build(self.trainable_variables)
        super().compile(optimizer=both, **kwargs)
        self._optimizers = (d_optimizer, g_optimizer)
        self._compile_args = {"d_optimizer": _serialize(d_optimizer), "g_optimizer": _serialize(g_optimizer)}

    @property
    def d_optimizer(self):
        return self._optimizers[0]

    @property
    def g_optimizer(self):
        return self._optimizers[1]

    def get_compile_config(self):
        return dict(getattr(self, "_compile_args", {})) or None

    def compile_from_config(self, config):
        self.compile(d_optimizer=_deserialize(config["d_optimizer"]), g_optimizer=_deserialize(config["g_optimizer"]))

    def inference_model(self):
        return self.generator

    def generate(self, n, seed=0):
        """``n`` generated images (numpy) from standard normal latent vectors drawn by a numpy
        generator seeded by ``seed`` (the same on every backend)."""
        z = np.random.default_rng(seed).standard_normal((n, self.latent_dim), dtype="float32")
        return np.asarray(self.generator.predict_on_batch(z))

    def train_step(self, *args):
        return getattr(self, f"_train_step_{keras.backend.backend()}")(*args)

    def test_step(self, *args):
        return getattr(self, f"_test_step_{keras.backend.backend()}")(*args)

    # Losses, written once with keras.ops.
    def _d_loss(self, real_logits, fake_logits):
        return _bce_logits(ops.ones_like(real_logits), real_logits) + _bce_logits(
            ops.zeros_like(fake_logits), fake_logits
        )

    def _g_loss(self, fake_logits):
        return _bce_logits(ops.ones_like(fake_logits), fake_logits)

    def _latents(self, images):
        return keras.random.normal((ops.shape(images)[0], self.latent_dim), seed=self.seed_generator)

    def _logs(self, d_loss, g_loss):
        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        return {m.name: m.result() for m in self.metrics}

    def _evaluate(self, data):
        images = keras.utils.unpack_x_y_sample_weight(data)[0]
        fake = self.generator(self._latents(images), training=False)
        fake_logits = self.discriminator(fake, training=False)
        real_logits = self.discriminator(images, training=False)
        return self._logs(self._d_loss(real_logits, fake_logits), self._g_loss(fake_logits))

    # TensorFlow
    def _train_step_tensorflow(self, data):
        import tensorflow as tf

        images = keras.utils.unpack_x_y_sample_weight(data)[0]
        d_vars, g_vars = self.discriminator.trainable_variables, self.generator.trainable_variables
        with tf.GradientTape() as tape:
            fake = self.generator(self._latents(images), training=True)
            d_loss = self._d_loss(self.discriminator(images, training=True), self.discriminator(fake, training=True))
        self.d_optimizer.apply(tape.gradient(d_loss, d_vars), d_vars)
        with tf.GradientTape() as tape:
            fake = self.generator(self._latents(images), training=True)
            g_loss = self._g_loss(self.discriminator(fake, training=True))
        self.g_optimizer.apply(tape.gradient(g_loss, g_vars), g_vars)
        return self._logs(d_loss, g_loss)

    _test_step_tensorflow = _evaluate

    # torch
    def _train_step_torch(self, data):
        import torch

        images = keras.utils.unpack_x_y_sample_weight(data)[0]
        d_vars, g_vars = self.discriminator.trainable_variables, self.generator.trainable_variables
        with torch.no_grad():
            fake = self.generator(self._latents(images), training=True)
        self.zero_grad()
        d_loss = self._d_loss(self.discriminator(images, training=True), self.discriminator(fake, training=True))
        d_loss.backward()
        with torch.no_grad():
            self.d_optimizer.apply([v.value.grad for v in d_vars], d_vars)
        self.zero_grad()
        fake = self.generator(self._latents(images), training=True)
        g_loss = self._g_loss(self.discriminator(fake, training=True))
        g_loss.backward()
        with torch.no_grad():
            self.g_optimizer.apply([v.value.grad for v in g_vars], g_vars)
        return self._logs(d_loss.detach(), g_loss.detach())

    def _test_step_torch(self, data):
        import torch

        with torch.no_grad():
            return self._evaluate(data)

    # JAX: the step receives the model's state as arrays and returns the new state.
    def _train_step_jax(self, state, data):
        import jax

        trainable, non_trainable, optimizer_state, metrics_state = state
        images = keras.utils.unpack_x_y_sample_weight(data)[0]
        g, d = self.generator, self.discriminator
        values = _StateView(self, trainable, non_trainable, optimizer_state)
        z_d, z_g = self._jax_latents(values, images, 2)

        def d_loss_fn(d_train, d_rest, g_rest):
            fake, g_rest = g.stateless_call(values.get(g.trainable_variables), g_rest, z_d, training=True)
            real_logits, d_rest = d.stateless_call(d_train, d_rest, images, training=True)
            fake_logits, d_rest = d.stateless_call(d_train, d_rest, fake, training=True)
            return self._d_loss(real_logits, fake_logits), (d_rest, g_rest)

        (d_loss, (d_rest, g_rest)), grads = jax.value_and_grad(d_loss_fn, has_aux=True)(
            values.get(d.trainable_variables),
            values.get(d.non_trainable_variables),
            values.get(g.non_trainable_variables),
        )
        d_train, d_opt = self.d_optimizer.stateless_apply(
            values.get(self.d_optimizer.variables), grads, values.get(d.trainable_variables)
        )
        values.set(d.trainable_variables, d_train)
        values.set(self.d_optimizer.variables, d_opt)

        def g_loss_fn(g_train, g_rest, d_rest):
            fake, g_rest = g.stateless_call(g_train, g_rest, z_g, training=True)
            fake_logits, d_rest = d.stateless_call(values.get(d.trainable_variables), d_rest, fake, training=True)
            return self._g_loss(fake_logits), (g_rest, d_rest)

        (g_loss, (g_rest, d_rest)), grads = jax.value_and_grad(g_loss_fn, has_aux=True)(
            values.get(g.trainable_variables), g_rest, d_rest
        )
        g_train, g_opt = self.g_optimizer.stateless_apply(
            values.get(self.g_optimizer.variables), grads, values.get(g.trainable_variables)
        )
        values.set(g.trainable_variables, g_train)
        values.set(self.g_optimizer.variables, g_opt)
        values.set(g.non_trainable_variables, g_rest)
        values.set(d.non_trainable_variables, d_rest)
        logs, metrics_state = self._jax_logs(metrics_state, d_loss, g_loss)
        return logs, (values.trainable, values.non_trainable, values.optimizer, metrics_state)

    def _test_step_jax(self, state, data):
        trainable, non_trainable, metrics_state = state
        images = keras.utils.unpack_x_y_sample_weight(data)[0]
        g, d = self.generator, self.discriminator
        values = _StateView(self, trainable, non_trainable, [])
        (z,) = self._jax_latents(values, images, 1)
        fake, _ = g.stateless_call(values.get(g.trainable_variables), values.get(g.non_trainable_variables), z)
        d_train, d_rest = values.get(d.trainable_variables), values.get(d.non_trainable_variables)
        fake_logits, _ = d.stateless_call(d_train, d_rest, fake)
        real_logits, _ = d.stateless_call(d_train, d_rest, images)
        logs, metrics_state = self._jax_logs(
            metrics_state, self._d_loss(real_logits, fake_logits), self._g_loss(fake_logits)
        )
        return logs, (values.trainable, values.non_trainable, metrics_state)

    def _jax_latents(self, values, images, count):
        state = self.seed_generator.state
        with keras.StatelessScope(state_mapping=[(state, values.get([state])[0])]) as scope:
            latents = [self._latents(images) for _ in range(count)]
            values.set([state], [scope.get_current_value(state)])
        return latents

    def _jax_logs(self, metrics_state, d_loss, g_loss):
        logs, new_state, i = {}, [], 0
        for metric, value in ((self.d_loss_tracker, d_loss), (self.g_loss_tracker, g_loss)):
            own = metrics_state[i : i + len(metric.variables)]
            i += len(metric.variables)
            own = metric.stateless_update_state(own, value)
            logs[metric.name] = metric.stateless_result(own)
            new_state.extend(own)
        return logs, new_state

    def get_config(self):
        return {
            **super().get_config(),
            "generator": _serialize(self.generator),
            "discriminator": _serialize(self.discriminator),
            "latent_dim": self.latent_dim,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["generator"] = _deserialize(config["generator"])
        config["discriminator"] = _deserialize(config["discriminator"])
        return cls(**config)


class _StateView:
    """Values of a model's variables inside a JAX step, looked up and replaced by variable, so a
    sub-model's (or a sub-optimizer's) slice of the model's state lists is one call away."""

    def __init__(self, model, trainable, non_trainable, optimizer):
        self.trainable, self.non_trainable = list(trainable), list(non_trainable)
        self.optimizer = list(optimizer)
        self._where = {}
        for values, refs in (
            (self.trainable, model.trainable_variables),
            (self.non_trainable, model.non_trainable_variables),
            (self.optimizer, model.optimizer.variables if optimizer else []),
        ):
            for i, ref in enumerate(refs):
                self._where[id(ref)] = (values, i)

    def get(self, variables):
        return [values[i] for values, i in (self._where[id(v)] for v in variables)]

    def set(self, variables, new_values):
        for v, value in zip(variables, new_values):
            values, i = self._where[id(v)]
            values[i] = value
