"""The ``vae`` architecture's model: :class:`VAE`, an encoder and a decoder trained with the
reparameterization trick. Its randomness comes from ``keras.random`` with a ``SeedGenerator`` held
by the model, whose state is a model variable (saved, and threaded through JAX's stateless steps).
"""

import keras
from keras import ops

from plugins.architectures._layers.parts import Parts, serializable


@serializable
class VAE(Parts, keras.Model):
    """A variational autoencoder: ``encoder`` maps x to ``[z_mean, z_log_var]``, ``decoder`` maps z back.

    ``model(x, training=True)`` samples z = z_mean + exp(z_log_var / 2)·ε (ε from the model's seed
    generator) and adds the KL divergence to N(0, I) with ``add_loss``; otherwise z = z_mean.
    ``compute_loss`` adds the reconstruction term: the summed binary cross-entropy per sample when
    ``likelihood="bernoulli"`` (a sigmoid decoder, data in [0, 1]), else the summed squared error.
    """

    PARTS = ("encoder", "decoder")

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
            **self.parts_config(),
            "beta": self.beta,
            "likelihood": self.likelihood,
            "seed": self.seed,
        }
