"""Compatibility module: the generative models used to live here, and now live one family a module
(:mod:`.vae`, :mod:`.diffusion`, :mod:`.gan`, with what they share in :mod:`.parts`).

Keep it. Runs saved before the move record ``"custom_modules":
["plugins.architectures._layers.generative"]`` in their ``run.json``, and the loader imports exactly
those modules before Keras reads the ``.keras`` file; importing this one imports (and so registers)
every class such a file may name. The registered names (``kerastack>VAE`` and so on) did not change,
so the old files load, export and resume. New runs record the family modules instead.
"""

from plugins.architectures._layers.diffusion import Diffusion, TimeEmbedding
from plugins.architectures._layers.gan import GAN, MinibatchStddev
from plugins.architectures._layers.parts import downsamplings
from plugins.architectures._layers.vae import VAE

__all__ = ["GAN", "VAE", "Diffusion", "MinibatchStddev", "TimeEmbedding", "downsamplings"]
