"""How to install the package and its development tools, as the README and docs say.

The package is on no package index, so no page may tell a reader to install it from
one; and the development set-up must work with the pip that Python 3.12 and 3.13 ship
(``pip install --group`` needs pip 25.1).
"""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def load_groups_script():
    """.ci/groups.py, imported from its path."""
    spec = importlib.util.spec_from_file_location("ci_groups", ROOT / ".ci" / "groups.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_page_installs_the_package_from_a_package_index():
    """`pip install inkit-async` (or with extras) is never given as a command to run."""
    for page in PAGES:
        if page.name == "changelog.md":
            continue
        text = " ".join(page.read_text().split())  # lines joined: a phrase may wrap
        for match in re.finditer(r"pip install ['\"]?inkit-async(?!\S* @)", text):
            after = text[match.end() : match.end() + 20]
            assert after.startswith("` finds nothing"), f"{page.name}: {match.group()}{after}"


def test_the_readme_and_the_index_say_how_to_install_it_for_real():
    """A checkout (`pip install .`) and a git URL, in the README and on the docs' index."""
    for page in (ROOT / "README.md", ROOT / "docs" / "index.md"):
        text = " ".join(page.read_text().split())
        assert "python -m pip install ." in text
        assert "inkit-async @ git+https://github.com/inkit-async/inkit-async" in text


def test_groups_script_expands_includes_from_pyproject():
    """.ci/groups.py prints a group's requirements, its included groups' too, once each."""
    groups = tomllib.loads((ROOT / "pyproject.toml").read_text())["dependency-groups"]
    script = load_groups_script()
    tests = script.requirements(["tests"], groups)
    assert tests == groups["tests"]
    typing = script.requirements(["typing"], groups)
    assert typing == [*groups["tests"], "mypy==2.4.1", "pyright==1.1.414"]
    dev = script.requirements(["dev"], groups)
    assert set(tests) | {"ruff==0.17.6", "mypy==2.4.1"} <= set(dev)
    assert len(dev) == len(set(dev))
    with pytest.raises(SystemExit, match="no dependency group 'nope'"):
        script.requirements(["nope"], groups)


def test_groups_script_prints_one_requirement_a_line(capsys):
    """Its output is what `pip install -r /dev/stdin` reads."""
    load_groups_script().main(["lint"])
    assert capsys.readouterr().out == "ruff==0.17.6\n"


def test_the_dev_set_up_does_not_need_pip_25_1():
    """The README's set-up commands work with stock pip: `--group` is only the alternative."""
    readme = (ROOT / "README.md").read_text()
    assert "python .ci/groups.py dev | python -m pip install" in readme
    assert "python .ci/groups.py docs | python -m pip" in readme
    for paragraph in readme.split("\n\n"):
        if "--group" in paragraph:
            assert "25.1" in paragraph, paragraph
