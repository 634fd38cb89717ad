"""Sessions for development and CI. `nox` alone runs exactly what CI runs."""

from __future__ import annotations

import nox

nox.needs_version = ">=2024.10.9"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True
# The CI set: lint, types, tests on the default Python, and the docs. `nox -s tests` runs
# the tests on all three Pythons.
nox.options.sessions = ["lint", "typecheck", "tests-3.11", "docs"]

PYTHONS = ["3.11", "3.12", "3.13"]


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """Run the test suite under coverage; fail under 95%."""
    session.install("-e", ".[tests]")
    session.run("coverage", "erase")
    session.run("coverage", "run", "-m", "pytest", *session.posargs)
    session.run("coverage", "combine", "--quiet")
    session.run("coverage", "report")


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff's linter and formatter check over the whole tree."""
    session.install("ruff>=0.8")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """Mypy --strict and pyright on the package and on a file that uses it as a user would."""
    session.install("-e", ".[typing,tests]")
    session.run("mypy", "--strict", "inkit_async", "tests/typing")
    session.run("pyright", "inkit_async", "tests/typing")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site with warnings as errors (into site/)."""
    session.install("-e", ".[docs]")
    session.run("mkdocs", "build", "--strict", env={"NO_MKDOCS_2_WARNING": "1"})


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """Benchmarks against raw httpx, httpx-aiohttp, raw aiohttp and the official SDK.

    Writes docs/performance.md's results, docs/performance.png and docs/performance.json.
    Takes ~10 minutes; `nox -s bench -- --quick` is a one-minute smoke run. Python 3.11:
    the official SDK does not import on 3.12+.
    """
    session.install("-e", ".[bench]")
    session.run("python", "-m", "benchmarks", *session.posargs)
