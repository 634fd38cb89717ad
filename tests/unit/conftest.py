"""Unit tests open no socket and start no process: what needs one is a functional test.

An autouse fixture refuses, for every test under tests/unit/, the calls that would make a
socket (``socket.socket`` and everything built on it: ``socket.create_connection``, asyncio's
and uvloop's connections and servers, name lookups) or a process (``subprocess``, ``os.fork``,
``multiprocessing``). The call raises, and the test fails at teardown even if the code under
test caught that error. The socket pair an event loop wakes itself with is let through: it
wraps descriptors ``socket.socketpair`` already made, and reaches nothing.
"""

from __future__ import annotations

import asyncio
import multiprocessing.process
import os
import socket
import subprocess
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

MISPLACED = (
    "{what} in a unit test: tests/unit/ opens no socket and starts no process. "
    "A test that needs one belongs in tests/functional/ (docs/architecture.md, 'Tests')."
)


class NotAUnitTestError(RuntimeError):
    """A unit test reached for a socket or a process."""


def _loop_classes() -> list[type]:
    """The event loop classes: asyncio's, and uvloop's when it is installed."""
    classes: list[type] = [asyncio.BaseEventLoop]
    try:
        import uvloop
    except ImportError:  # pragma: no cover - the tests group installs it off Windows
        return classes
    return [*classes, uvloop.Loop]


#: The loop methods that open a socket or start a process, on every loop class.
_LOOP_METHODS = (
    "create_connection",
    "create_server",
    "create_datagram_endpoint",
    "create_unix_connection",
    "create_unix_server",
    "getaddrinfo",
    "subprocess_exec",
    "subprocess_shell",
)


@pytest.fixture(autouse=True)
def _no_sockets_or_processes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Refuse sockets and processes to the test; fail it if it reached for any."""
    reached: list[str] = []

    def refuse(what: str) -> Callable[..., Any]:
        def refused(*args: object, **kwargs: object) -> Any:
            reached.append(what)
            raise NotAUnitTestError(MISPLACED.format(what=what))

        return refused

    make_socket = socket.socket.__init__

    def new_socket(self: socket.socket, *args: Any, **kwargs: Any) -> None:
        # A new socket, unless it wraps a descriptor (socketpair() and fromfd() pass one).
        if kwargs.get("fileno", args[3] if len(args) > 3 else None) is None:
            refuse("socket.socket()")()
        make_socket(self, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "__init__", new_socket)
    monkeypatch.setattr(socket, "create_connection", refuse("socket.create_connection()"))
    monkeypatch.setattr(socket, "getaddrinfo", refuse("socket.getaddrinfo()"))
    for cls in _loop_classes():
        for name in _LOOP_METHODS:
            if hasattr(cls, name):
                monkeypatch.setattr(cls, name, refuse(f"loop.{name}()"))
    monkeypatch.setattr(subprocess.Popen, "__init__", refuse("subprocess.Popen()"))
    for name in ("fork", "forkpty", "system", "posix_spawn", "posix_spawnp"):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, refuse(f"os.{name}()"))
    monkeypatch.setattr(multiprocessing.process.BaseProcess, "start", refuse("Process.start()"))
    yield
    if reached:
        pytest.fail(MISPLACED.format(what=", ".join(dict.fromkeys(reached))), pytrace=False)
