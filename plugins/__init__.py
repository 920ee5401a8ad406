"""kerastack's built-in plugins. They are loaded exactly like third-party ones (core.plugins)."""
