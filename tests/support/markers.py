"""The markers that say which servers a functional test starts, and the checks that keep them true.

A fixture that starts a server says so with :func:`starts`; a hook in tests/conftest.py marks
every test that uses it (directly or through other fixtures), so ``pytest -m "not redis"``
deselects them on a machine without redis-server. A helper that starts a server (the classes
and context managers in this package) checks with :func:`require` that the test it runs for
carries the marker: a test that starts one in its own body, or a fixture that starts one and
is not declared with :func:`starts`, fails with what to add.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, TypeVar

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

#: Each marker, and what a test that carries it starts (pyproject.toml registers them).
SERVERS = {
    "loopback": "a scripted server in this process on 127.0.0.1 (loopback.py, h2_server.py)",
    "tls": "a TLS server with a certificate from the test's own CA (trustme)",
    "uvicorn": "an ASGI app served by uvicorn on 127.0.0.1",
    "redis": "a redis-server process of the test's own",
    "proxy": "a tinyproxy forward proxy process",
    "nginx": "an nginx process",
    "openssl": "an openssl s_server process",
    "subprocess": "a Python child process: the CLI, an example, a fresh interpreter",
}

_F = TypeVar("_F", bound="Callable[..., object]")
#: The attribute :func:`starts` sets on a fixture's function.
_ATTRIBUTE = "_inkit_test_starts"


class _Running:
    """The test being run now, set by tests/conftest.py around each test's protocol."""

    item: pytest.Item | None = None


def starts(*markers: str) -> Callable[[_F], _F]:
    """Declare that a fixture starts these servers: every test that uses it gets the markers.

    Put it under ``@pytest.fixture``, on the function itself.
    """
    unknown = set(markers) - SERVERS.keys()
    if unknown:
        raise ValueError(f"no such server marker: {sorted(unknown)}")

    def declare(fixture: _F) -> _F:
        setattr(fixture, _ATTRIBUTE, markers)
        return fixture

    return declare


def markers_of(item: pytest.Item) -> set[str]:
    """The server markers the fixtures *item* uses declare, through fixtures they request."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return set()
    found: set[str] = set()
    for name, definitions in info.name2fixturedefs.items():
        for definition in reversed(definitions):
            found.update(getattr(definition.func, _ATTRIBUTE, ()))
            # An override that requests the fixture it overrides uses that one too.
            if name not in definition.argnames:
                break
    return found


def require(marker: str) -> None:
    """Fail the running test unless it carries *marker* (outside a test, do nothing)."""
    item = _Running.item
    if item is None or item.get_closest_marker(marker) is not None:
        return
    pytest.fail(
        f"{item.nodeid} starts {SERVERS[marker]} but is not marked {marker!r}: declare the "
        f"fixture that starts it with @starts({marker!r}) (tests/support/markers.py), or mark "
        f"the test @pytest.mark.{marker} if it starts it itself.",
        pytrace=False,
    )


@contextlib.contextmanager
def running(item: pytest.Item) -> Iterator[None]:
    """Make *item* the running test while its setup, call and teardown run."""
    _Running.item = item
    try:
        yield
    finally:
        _Running.item = None


#: The servers tests run as processes, by program name, and the marker each needs.
PROGRAMS = {"redis-server": "redis", "tinyproxy": "proxy", "nginx": "nginx", "openssl": "openssl"}


def marker_for(program: str) -> str:
    """The marker a test that starts *program* (a path or a name) carries."""
    return PROGRAMS.get(program.rsplit("/", 1)[-1], "subprocess")
