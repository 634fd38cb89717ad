"""``python -m inkit_async``: the same command line as ``inkit-async``."""

from __future__ import annotations

from ._cli import run

if __name__ == "__main__":
    run()
