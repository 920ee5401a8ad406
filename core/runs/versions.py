"""Package versions, read from metadata so that nothing heavy gets imported: what run.json (and an
export's metadata) records of the software that made it."""

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


def package_version(name: str) -> str | None:
    """The installed version of distribution ``name``, or None when it is not installed."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def versions() -> dict[str, str]:
    """``{"python": "3.11.7", "keras": "3.15.1", ...}``: Python and the installed packages kerastack
    records in ``run.json`` (those not installed are left out). Reads metadata only; imports nothing."""
    out = {"python": platform.python_version()}
    out.update({name: package_version(name) for name in PACKAGES})
    return {k: v for k, v in out.items() if v}
