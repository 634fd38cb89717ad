"""A redis-server of the test's own: started on a free 127.0.0.1 port, persistence off.

The fleet tests and ``python -m benchmarks.fleet`` need a real Redis (Debian's
``redis-server`` 7.x; ``.ci/run`` installs it). ``RedisServer`` starts one in a temporary
directory, waits until it answers ``PING``, and can kill it (``SIGKILL``), freeze it
(``SIGSTOP``) and start it again on the same port, empty, as a restarted Redis without
persistence comes back. The ``redis_server`` fixture gives each test its own and stops it
afterwards; a server that cannot start fails the test, it is never skipped.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Self

from .markers import require

#: Seconds a redis-server may take to answer its first PING.
START_WITHIN = 10.0


class RedisServerError(RuntimeError):
    """The redis-server could not be started."""


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ping(port: int, timeout: float = 0.5) -> bool:
    """Whether a Redis on *port* answers PING."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One redis-server process on 127.0.0.1; ``with RedisServer() as redis:``."""

    def __init__(self, directory: Path | None = None) -> None:
        """Keep its files in *directory* (default: a temporary one of its own)."""
        self._own_directory = directory is None
        self.directory = Path(tempfile.mkdtemp(prefix="redis-")) if directory is None else directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The URL to pass to ``RedisThrottle.from_url``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start (or start again, empty) on this server's port; return once it answers.

        Raises:
            RedisServerError: redis-server is missing, exits, or does not answer in time.
        """
        require("redis")
        binary = shutil.which("redis-server")
        if binary is None:
            raise RedisServerError(
                "redis-server is not installed (apt-get install redis-server); "
                "the fleet tests need a real one"
            )
        command = [
            binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.directory),
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
        ]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=self.directory
        )
        deadline = time.monotonic() + START_WITHIN
        while not ping(self.port):
            if self.process.poll() is not None:
                _, err = self.process.communicate()
                self.process = None
                raise RedisServerError(f"redis-server exited: {err.decode(errors='replace')}")
            if time.monotonic() > deadline:
                self.kill()
                raise RedisServerError(f"redis-server did not answer within {START_WITHIN} s")
            time.sleep(0.01)

    def kill(self) -> None:
        """Kill it at once (SIGKILL), as a crash would; its data is gone."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGCONT)  # a frozen one dies too
            process.kill()
            process.wait(10)
        if process.stderr is not None:
            process.stderr.close()

    def freeze(self) -> None:
        """Stop it (SIGSTOP): connections stay open, nothing answers."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """Let a frozen server go on (SIGCONT)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """Stop it and remove its files."""
        self.kill()
        if self._own_directory:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> Self:
        """Start it."""
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Stop it."""
        self.stop()
