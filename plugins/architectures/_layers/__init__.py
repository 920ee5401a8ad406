"""Layers and building blocks shared by the built-in architectures (not plugins: the loader skips ``_``
modules). Modules here may import keras at the top: they are imported only from inside ``build`` and,
for a saved model's custom layers, before it loads."""
