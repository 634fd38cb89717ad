"""The package's shape: no class reaches into another's privates by overriding them.

A subclass that overrides a private method of another class of the package depends on
that class's internals: the throttle's Redis variant once overrode six of them and wrote
eight of its fields. Shared behaviour goes through a seam instead (a ``FlowState``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import inkit_async

PACKAGE = Path(inkit_async.__file__).parent


def private_overrides(sources: dict[str, str]) -> list[str]:
    """Each private method a class of *sources* defines again over a base class of them.

    As ``Sub._name overrides Base._name``; bases are matched by name.
    """
    classes: dict[str, ast.ClassDef] = {}
    for source in sources.values():
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ClassDef):
                classes[node.name] = node

    def private_methods(node: ast.ClassDef) -> set[str]:
        return {
            item.name
            for item in node.body
            if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
            and item.name.startswith("_")
            and not item.name.endswith("__")
        }

    def ancestors(node: ast.ClassDef) -> list[ast.ClassDef]:
        found: list[ast.ClassDef] = []
        for base in node.bases:
            name = base.id if isinstance(base, ast.Name) else getattr(base, "attr", None)
            if name in classes and classes[name] is not node:
                found += [classes[name], *ancestors(classes[name])]
        return found

    overrides = []
    for node in classes.values():
        mine = private_methods(node)
        for base in ancestors(node):
            overrides += [
                f"{node.name}.{name} overrides {base.name}.{name}"
                for name in sorted(mine & private_methods(base))
            ]
    return overrides


def test_the_check_finds_an_override():
    """A class that defines a private method of its base again is found."""
    source = "class A:\n    def _x(self): ...\n    def __repr__(self): ...\n"
    source += "class B(A):\n    def _x(self): ...\n    def __repr__(self): ...\n"
    assert private_overrides({"m.py": source}) == ["B._x overrides A._x"]


def test_no_class_of_the_package_overrides_a_private_method_of_another():
    """Across ``inkit_async/``, no subclass overrides its base's private methods."""
    sources = {str(path): path.read_text() for path in PACKAGE.rglob("*.py")}
    assert private_overrides(sources) == []
