"""What importing the package loads, seen from a fresh interpreter."""

from __future__ import annotations

import pytest


@pytest.mark.subprocess
def test_importing_the_package_does_not_import_the_fake():
    """`import inkit_async` stays light: the testing fake loads only when asked for."""
    import subprocess
    import sys

    code = "import sys, inkit_async; print('inkit_async.testing' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
