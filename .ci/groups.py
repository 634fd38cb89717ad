"""Print the requirements of pyproject.toml's dependency groups, one a line, for `pip -r`.

Stock pip before 25.1 has no `--group`; this reads the same groups (PEP 735, with their
`include-group`s) from pyproject.toml, the one list of the development tools:

    python .ci/groups.py dev | python -m pip install -c .ci/constraints.txt -e . -r /dev/stdin
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def requirements(names: list[str], groups: dict[str, list[object]]) -> list[str]:
    """The requirements of the groups *names*, includes expanded, each once, in order."""
    found: list[str] = []
    for name in names:
        if name not in groups:
            raise SystemExit(f"no dependency group {name!r} in pyproject.toml")
        for item in groups[name]:
            if isinstance(item, dict):
                more = requirements([item["include-group"]], groups)
            else:
                more = [str(item)]
            found += [req for req in more if req not in found]
    return found


def main(argv: list[str]) -> None:
    """Print the requirements of the groups named in *argv*."""
    groups = tomllib.loads(PYPROJECT.read_text())["dependency-groups"]
    sys.stdout.write("".join(f"{req}\n" for req in requirements(argv, groups)))


if __name__ == "__main__":
    main(sys.argv[1:])
