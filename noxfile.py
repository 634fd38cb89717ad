"""Sessions for development and CI. `nox` alone runs exactly what CI runs."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nox

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True
#: CI sets CI=true. There a Python the classifiers name but the machine lacks fails the run:
#: it has not shown that the package works on it. On a developer's machine a missing one is
#: skipped with nox's "Missing interpreters will error by default on CI systems" line, and
#: the suite runs on the Pythons that are there.
nox.options.error_on_missing_interpreters = bool(os.environ.get("CI"))

PYPROJECT = nox.project.load_toml("pyproject.toml")
PYTHONS = nox.project.python_versions(PYPROJECT)  # from the classifiers
TYPED = ["inkit_async", "tests/typing", "docs/examples"]
#: Exact versions of everything the sessions install, resolved for every supported Python
#: at once (`nox -s lock` refreshes it, in a commit of its own). A release elsewhere then
#: never changes what CI runs; `latest` and `lowest` show what the ranges let in.
CONSTRAINTS = ("-c", ".ci/constraints.txt")


def _select_pyenv_pythons() -> None:
    """Let nox find every Python that pyenv installed, not only its global one.

    pyenv puts only its selected versions on PATH: `python3.12` is a shim that refuses to
    run unless 3.12 is selected too. Select the newest installed release of every 3.x as
    well, after the ones already selected, so that `python` stays what it was.
    """
    pyenv = shutil.which("pyenv")
    if pyenv is None:
        return
    run = functools.partial(subprocess.run, capture_output=True, text=True, check=False)
    selected = run([pyenv, "version-name"]).stdout.strip()
    newest: dict[str, str] = {}
    for version in sorted(run([pyenv, "versions", "--bare"]).stdout.split(), key=_release):
        parts = version.split(".")
        if len(parts) == 3 and all(part.isdigit() for part in parts) and parts[0] == "3":
            newest[f"3.{parts[1]}"] = version
    if selected and newest:
        os.environ["PYENV_VERSION"] = ":".join([selected, *newest.values()])


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else -1 for part in version.split("."))


_select_pyenv_pythons()
# A Python the machine lacks is skipped (or, in CI, fails the run); uv would otherwise
# download a build of its own from outside the package registries.
os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")

# The CI set. The oldest Python runs every test under coverage (gate: 95%), on asyncio's
# loop. The middle one runs them on uvloop, and the newest against the built wheel, each all
# but the slow machinery tests (multi-process fleets, the benchmark's own runs: marked
# `slow`) and without coverage, to keep CI within ten minutes. A caller's client, transport
# and Timeout are httpx's in those; tests_httpx2 runs the tests that build them again with
# httpx2's (a few seconds: only those tests).
nox.options.sessions = [
    "lint",
    "typecheck",
    *(f"tests-{python}" for python in PYTHONS[:-1]),
    "tests_wheel",
    "tests_httpx2",
    "docs",
]
#: The event loop each Python's test session runs on, when not asyncio's own.
LOOPS = {PYTHONS[1]: "uvloop"}


#: The httpx-API library the tests build a caller's client, transport and Timeout of
#: (tests/support/http_library.py), by the variable that names it. Set by every test session, so
#: one left in the shell changes none of them.
HTTP_LIBRARY = "INKIT_TEST_HTTPX"
#: The tests that build those objects (they use the `http_library` fixture).
USES_HTTP_LIBRARY = ("-m", "http_library and not slow")


def groups(*names: str) -> tuple[str, ...]:
    """The requirements of these dependency groups in pyproject.toml."""
    return nox.project.dependency_groups(PYPROJECT, *names)


#: Real servers the tests start for themselves, from Debian's packages: a forward proxy,
#: Redis, and servers that speak only HTTP/2 (tests/support/h2_server.py), by binary and package.
#: Installed here when missing (as root, with apt-get); a fixture that cannot start its
#: server fails its tests. The proxy is tinyproxy-bin: one binary that needs only the C
#: library, with no service (squid pulled in perl and a service). Debian 12's ``nginx`` is
#: the binary itself, built with the ssl and http_v2 modules (``nginx-light`` and the others
#: only add module packages to it); ``openssl`` is for ``openssl s_server -alpn h2``.
SERVERS = {
    "tinyproxy": "tinyproxy-bin",
    "redis-server": "redis-server",
    "nginx": "nginx",
    "openssl": "openssl",
}


def ensure_servers(session: nox.Session) -> None:
    """Install the test servers that are missing, or stop with what to install.

    Only what the tests need: no recommended packages, no service started while installing
    (a policy-rc.d says no, as in Debian's container images), and none left to start at
    boot. The tests start their own instances on free ports.
    """
    path = f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin"
    missing = [
        package for binary, package in SERVERS.items() if not shutil.which(binary, path=path)
    ]
    if not missing:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        session.error(f"the tests need these servers installed: {' '.join(missing)}")
    policy = Path("/usr/sbin/policy-rc.d")
    ours = not policy.exists()
    if ours:
        policy.write_text(
            "#!/bin/sh\n# nox (inkit-async): start no service while installing\nexit 101\n"
        )
        policy.chmod(0o755)
    try:
        session.run("apt-get", "update", "-qq", external=True)
        session.run(
            "apt-get",
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            *missing,
            external=True,
            env={"DEBIAN_FRONTEND": "noninteractive"},
        )
    finally:
        if ours:
            policy.unlink()
    # A package that brought a service (redis-server and nginx do; tinyproxy-bin does not):
    # off, by the service's name, which is the package's.
    for service in missing:
        if Path("/etc/init.d", service).exists() and shutil.which("update-rc.d", path=path):
            session.run("update-rc.d", service, "disable", external=True, silent=True)
        units = (Path(lib, "systemd/system", f"{service}.service") for lib in ("/lib", "/usr/lib"))
        if (
            Path("/run/systemd/system").is_dir()
            and shutil.which("systemctl", path=path)
            and any(unit.exists() for unit in units)
        ):
            session.run("systemctl", "disable", "--now", service, external=True, silent=True)


def run_tests(session: nox.Session, where: Path | str = ".") -> None:
    """The test suite under coverage, run in *where*; fail under 95%."""
    session.env["COVERAGE_FILE"] = str(Path(".coverage").resolve())  # reported from here
    with session.chdir(where):
        session.run("coverage", "erase")
        session.run("coverage", "run", "-m", "pytest", *session.posargs)
    session.run("coverage", "combine", "--quiet")  # maps site-packages back to inkit_async/
    session.run("coverage", "report")


#: What the sessions beside the full run leave out (they still run everything else).
NOT_SLOW = ("-m", "not slow")


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff's linter and formatter check over the whole tree."""
    session.install(*CONSTRAINTS, *groups("lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """Mypy --strict and pyright on the package, a file typed as a user's, and the examples."""
    session.install(*CONSTRAINTS, "-e", ".", *groups("typing"))
    session.run("mypy", "--strict", *TYPED)
    session.run("pyright", *TYPED)


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """Run the test suite on an editable install (all of it, under coverage, on the oldest).

    On the middle Python it runs on uvloop (``LOOPS``).
    """
    ensure_servers(session)
    session.env[HTTP_LIBRARY] = "httpx"
    session.install(*CONSTRAINTS, "-e", ".", *groups("tests"))
    if session.python == PYTHONS[0]:
        run_tests(session)
    else:
        loop = LOOPS.get(str(session.python), "asyncio")
        session.run("pytest", "-q", *NOT_SLOW, *session.posargs, env={"INKIT_TEST_LOOP": loop})


# pip builds the wheel, and uv's environments have no pip.
@nox.session(python=PYTHONS[-1], venv_backend="virtualenv")
def tests_wheel(session: nox.Session) -> None:
    """Run the fast part of the test suite against the wheel built from this tree."""
    ensure_servers(session)
    session.env[HTTP_LIBRARY] = "httpx"
    tmp = Path(session.create_tmp())
    shutil.rmtree(tmp / "dist", ignore_errors=True)
    session.run("python", "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp / "dist"), ".")
    wheel = str(next((tmp / "dist").glob("*.whl")))
    session.install(*CONSTRAINTS, wheel, *groups("tests"))
    session.install("--force-reinstall", "--no-deps", wheel)  # a reused venv has the last one
    # From a copy of the tree without inkit_async/, nothing can import the source instead:
    # not pytest, which puts the tree on sys.path, nor the `python -m inkit_async` that the
    # tests start in it.
    tree = tmp / "tree"
    shutil.rmtree(tree, ignore_errors=True)
    # Not every dot-file: .ci/ stays, the tests read it (the dev set-up's groups.py).
    ignored = (".git", ".nox", ".venv", ".*_cache", ".hypothesis", ".coverage*", "*.whl")
    shutil.copytree(".", tree, ignore=shutil.ignore_patterns(*ignored, "inkit_async", "site"))
    with session.chdir(tree):
        session.run("pytest", "-q", *NOT_SLOW, *session.posargs)


@nox.session(python=PYTHONS[0])
def tests_httpx2(session: nox.Session) -> None:
    """Run the tests that hand the SDK a client, transport or Timeout with httpx2's objects.

    The client, transport, proxy, TLS, secrets, retry and fault tests that build them
    from the `http_library` fixture (the rest of the suite does not depend on it). The
    httpx2 tests in tests/unit/test_httpx2.py and tests/functional/test_httpx2_sockets.py
    run in every session. On the oldest Python, whose packages the coverage run has
    already fetched.
    """
    ensure_servers(session)
    session.env[HTTP_LIBRARY] = "httpx2"
    session.install(*CONSTRAINTS, "-e", ".", *groups("tests"))
    session.run("pytest", "-q", *USES_HTTP_LIBRARY, *session.posargs)


@nox.session(python=PYTHONS[0])
def tests_uvloop(session: nox.Session) -> None:
    """Run the test suite on uvloop's event loop on the oldest Python (not in the CI set)."""
    ensure_servers(session)
    session.env[HTTP_LIBRARY] = "httpx"
    session.install(*CONSTRAINTS, "-e", ".", *groups("tests"))
    session.run("pytest", "-q", *NOT_SLOW, *session.posargs, env={"INKIT_TEST_LOOP": "uvloop"})


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site with warnings as errors (into site/)."""
    session.install(*CONSTRAINTS, "-e", ".", *groups("docs"))
    session.run("mkdocs", "build", "--strict", env={"NO_MKDOCS_2_WARNING": "1"})


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """Benchmarks against raw httpx, httpx-aiohttp, raw aiohttp and the official SDK.

    Writes docs/performance.md (results and profile), docs/rate-limits.md's tables and
    their charts and figures (docs/performance.*, docs/rate-limits.*). Takes about half an
    hour; `-- --quick` is a smoke run of about two minutes, `-- --only tls,uvloop` (and
    `c100`, `tracing`, `rate-limits`, `performance`) runs a part. The fleet of processes
    sharing a RedisThrottle is `python -m benchmarks.fleet`, 10,000 lookups through
    3 s of 502s `python -m benchmarks.outage`; get, list and create against raw aiohttp,
    the SDK before issue 22's single sender and after, `python -m benchmarks.methods`
    (about a minute; docs/performance.md's "Every method on one path" table and
    docs/methods.json), and the download rows (1,000 x 1 MiB at C=100 against raw
    aiohttp, one 500 MiB file, a cancellation half-way) `python -m benchmarks.downloads`
    (about a minute; docs/downloads.md's table and docs/downloads.json). Python 3.11:
    the official SDK does not import on 3.12+.
    """
    session.install(*CONSTRAINTS, "-e", ".", *groups("bench"))
    session.run("python", "-m", "benchmarks", *session.posargs)


#: Every dependency group, for the lock and for `latest`.
ALL_GROUPS = ("tests", "typing", "lint", "docs", "bench", "dev")


@nox.session(python=PYTHONS[0], venv_backend="uv")
def lock(session: nox.Session) -> None:
    """Refresh .ci/constraints.txt to the newest releases the ranges allow (commit it alone)."""
    session.install("uv")
    flags = [f"--group={group}" for group in ALL_GROUPS]
    session.run(
        "uv", "pip", "compile", "pyproject.toml", "--all-extras", *flags, "--universal",
        f"--python-version={PYTHONS[0]}", "--upgrade", "--no-header",
        "--output-file=.ci/constraints.txt",
    )  # fmt: skip


# uv: its --upgrade takes the newest of every package, the project's own dependencies
# (httpx, aiohttp) too, where pip's upgrades only the ones named (httpx2, from the group).
@nox.session(python=PYTHONS[0], venv_backend="uv")
def latest(session: nox.Session) -> None:
    """The suite and the type checks against the newest release of every dependency.

    Not in the CI set: it shows early what the next release of httpx, httpx2, aiohttp,
    redis-py, cattrs and the rest will break, before a lock refresh lets it into CI. The
    tests that build a caller's client run again with httpx2's.
    """
    ensure_servers(session)
    session.env[HTTP_LIBRARY] = "httpx"
    session.install("--upgrade", "-e", ".[redis,otel]", *groups("typing"))
    session.run("pytest", "-q", *NOT_SLOW, *session.posargs)
    session.run("pytest", "-q", *USES_HTTP_LIBRARY, *session.posargs, env={HTTP_LIBRARY: "httpx2"})
    session.run("mypy", "--strict", *TYPED)
    session.run("pyright", *TYPED)


# A new environment each time: installing into one kept from an earlier run keeps every
# package already there that satisfies a range, not its lowest version.
@nox.session(python=PYTHONS[0], venv_backend="uv", reuse_venv=False)
def lowest(session: nox.Session) -> None:
    """The suite against the lowest version of every direct dependency pyproject.toml declares.

    Not in the CI set: it keeps the declared ranges true (`httpx>=0.27` means 0.27 works).
    The suite runs on asyncio's loop, then on uvloop's, whose lowest version it also names;
    the tests that build a caller's client run once more with httpx2's (its lowest too).
    """
    ensure_servers(session)
    session.env[HTTP_LIBRARY] = "httpx"
    session.install("--resolution=lowest-direct", "-e", ".[redis,otel]", *groups("tests"))
    session.run("pytest", "-q", *NOT_SLOW, *session.posargs)
    session.run("pytest", "-q", *USES_HTTP_LIBRARY, *session.posargs, env={HTTP_LIBRARY: "httpx2"})
    if sys.platform != "win32":  # as the tests group installs uvloop
        session.run("pytest", "-q", *NOT_SLOW, *session.posargs, env={"INKIT_TEST_LOOP": "uvloop"})
