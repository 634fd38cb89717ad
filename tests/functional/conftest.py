"""Fixtures that start servers for the functional tests, and the check on every process.

Each fixture that starts a server is declared with ``@starts(marker)``: the tests that use
it are marked by tests/conftest.py, and ``pytest -m "not redis"`` (or ``proxy``, ``nginx``,
...) leaves them out where that server is missing. A process a test starts by other means
must be marked by hand (``subprocess`` for Python, the server's marker for its program):
``_processes_are_marked`` fails the test that starts one unmarked.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from tests.support.h2_server import H2TLSServer
from tests.support.loopback import LoopbackServer, uvicorn_serving
from tests.support.markers import marker_for, require, starts
from tests.support.redis_server import RedisServer, RedisServerError


@pytest.fixture(autouse=True)
def _processes_are_marked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail a test that starts a process without the marker that says so.

    ``redis-server``, ``tinyproxy``, ``nginx`` and ``openssl`` need the server's marker,
    any other program (the CLI, an example, a fresh interpreter) ``subprocess``.
    """
    popen = subprocess.Popen.__init__

    def checked(self: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> None:
        program = args if isinstance(args, str | bytes | os.PathLike) else args[0]
        require(marker_for(os.fsdecode(program)))
        popen(self, args, *rest, **kwargs)

    monkeypatch.setattr(subprocess.Popen, "__init__", checked)


@pytest.fixture
@starts("loopback")
async def server() -> AsyncIterator[LoopbackServer]:
    """A fresh loopback server on 127.0.0.1 for one test (modules may override it)."""
    async with LoopbackServer() as server:
        yield server


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    """A certificate authority made for this test run, trusted by nothing on the machine."""
    return trustme.CA()


@pytest.fixture
def certificate(ca: trustme.CA) -> trustme.LeafCert:
    """A certificate for 127.0.0.1 from the test CA."""
    return ca.issue_cert("127.0.0.1")


@pytest.fixture
@starts("loopback", "tls")
async def h2_tls(certificate: trustme.LeafCert) -> AsyncIterator[H2TLSServer]:
    """A TLS server offering only ``h2`` that answers in HTTP/2 frames."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(context)
    async with H2TLSServer(context) as server:
        yield server


@pytest.fixture
@starts("uvicorn")
async def uvicorn_server() -> AsyncIterator[Callable[[Any], Awaitable[str]]]:
    """Serve ASGI apps with uvicorn on 127.0.0.1, each until the test ends.

    ``url = await uvicorn_server(fake.app)`` gives the API root to pass as ``base_url``.
    """
    async with contextlib.AsyncExitStack() as stack:

        async def serve(app: Any) -> str:
            return await stack.enter_async_context(uvicorn_serving(app))

        yield serve


@pytest.fixture
@starts("redis")
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own on 127.0.0.1; a server that cannot start fails it."""
    server = RedisServer(tmp_path)
    try:
        server.start()
    except RedisServerError as exc:
        pytest.fail(str(exc))
    try:
        yield server
    finally:
        with contextlib.suppress(Exception):
            server.stop()
