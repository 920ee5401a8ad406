"""Layers and building blocks of the built-in architectures that are modules, and what families share
(not plugins: the loader skips ``_`` modules; a family that is a package keeps its own classes in its
``layers.py``, e.g. ``gan/layers.py``). Modules here may import keras at the top: they are imported
only from inside ``build`` and, for a saved model's custom layers, before it loads."""
