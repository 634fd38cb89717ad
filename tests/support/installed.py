"""The package's metadata as an installer writes it, from this tree's pyproject.toml.

The suite's environment may have installed the package before its entry points last
changed (an editable install keeps the metadata of the day it ran). To test what
installing this tree gives a user, such as pytest loading the plugin through its
``pytest11`` entry point, a test writes this tree's metadata into a directory of its
own and puts that first on the path: ``importlib.metadata`` then finds the entry points
pyproject.toml declares now, written in the format installers use (``entry_points.txt``).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def write_installed_metadata(directory: Path) -> Path:
    """Write ``inkit_async-<version>.dist-info`` under *directory*; return *directory*."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    dist_info = directory / f"inkit_async-{project['version']}.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.4\nName: {project['name']}\nVersion: {project['version']}\n"
    )
    lines: list[str] = []
    for group, entries in project.get("entry-points", {}).items():
        lines.append(f"[{group}]")
        lines.extend(f"{name} = {target}" for name, target in entries.items())
        lines.append("")
    (dist_info / "entry_points.txt").write_text("\n".join(lines))
    return directory
