"""Built-in tasks: what a model's outputs mean (``core.Task``), registered like any plugin's."""
