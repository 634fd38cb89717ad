"""The installed distribution's version, read once from its metadata."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__: str = version("inkit-async")
except PackageNotFoundError:  # pragma: no cover - running from a source tree that was not installed
    __version__ = "0+unknown"
