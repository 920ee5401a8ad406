"""Package versions, read from metadata so that nothing heavy gets imported."""

import importlib.metadata
import platform

PACKAGES = (
    "kerastack",
    "keras",
    "tensorflow",
    "jax",
    "jaxlib",
    "torch",
    "numpy",
    "pluggy",
    "ai-edge-litert",
    "scikit-learn",
)


def package_version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def versions():
    out = {"python": platform.python_version()}
    out.update({name: package_version(name) for name in PACKAGES})
    return {k: v for k, v in out.items() if v}
