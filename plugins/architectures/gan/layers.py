"""The ``gan`` architecture's model and layer: :class:`GAN`, a generator trained against a
discriminator with a training step written for each backend, and :class:`MinibatchStddev`, the
discriminator's remedy for mode collapse. The generator is the deployed model. Randomness comes from
``keras.random`` with a ``SeedGenerator`` held by the model, whose state is a model variable.
"""

import keras
import numpy as np
from keras import layers, ops

from plugins.architectures._layers.parts import Parts, serializable


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
class GAN(Parts, keras.Model):
    """A GAN: ``generator`` (latent vector → image in [0, 1]) against ``discriminator`` (image → logit).

    Compile with ``d_optimizer`` and ``g_optimizer``. Each training step first updates the
    discriminator on real images and generated ones (non-saturating loss), then the generator
    against the updated discriminator; the logs are ``d_loss`` and ``g_loss``. Keras 3 train steps
    are backend-specific, so ``train_step``/``test_step`` dispatch to a TensorFlow (GradientTape),
    JAX (``stateless_call`` + ``jax.value_and_grad``, state returned) or torch (autograd) version.
    ``model(images)`` is the discriminator's logit; ``inference_model()`` is the generator.
    """

    PARTS = ("generator", "discriminator")

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
        serialize = keras.saving.serialize_keras_object
        self._compile_args = {"d_optimizer": serialize(d_optimizer), "g_optimizer": serialize(g_optimizer)}

    @property
    def d_optimizer(self):
        return self._optimizers[0]

    @property
    def g_optimizer(self):
        return self._optimizers[1]

    def get_compile_config(self):
        return dict(getattr(self, "_compile_args", {})) or None

    def compile_from_config(self, config):
        deserialize = keras.saving.deserialize_keras_object
        self.compile(d_optimizer=deserialize(config["d_optimizer"]), g_optimizer=deserialize(config["g_optimizer"]))

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
            **self.parts_config(),
            "latent_dim": self.latent_dim,
            "seed": self.seed,
        }


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
