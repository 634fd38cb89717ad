"""Servers that speak only HTTP/2, on 127.0.0.1, for the tests of an HTTP/1.1 client on them.

Three, for the three ways such a server answers an HTTP/1.1 client:

- ``running_nginx``: nginx (Debian's, 1.22) with ``listen 127.0.0.1:PORT http2``, cleartext:
  HTTP/2 with prior knowledge only. To an HTTP/1.1 request it answers with SETTINGS,
  WINDOW_UPDATE and GOAWAY frames, and closes. With ``tls=`` it listens with ``ssl http2``
  instead, which is no HTTP/2-only server: nginx 1.22 offers ``h2`` and ``http/1.1`` by
  ALPN and cannot be told to refuse HTTP/1.1 over TLS, so it serves an HTTP/1.1 client
  (``/ok`` answers ``ok``).
- ``H2TLSServer``: a TLS server in the test's event loop that offers only ``h2`` by ALPN. As
  every server built on Python's ssl module, it agrees on no protocol with a client that
  offers only others (it does not refuse it), and then speaks HTTP/2: SETTINGS at once,
  GOAWAY once it has read something that is not the HTTP/2 preface.
- ``running_openssl_h2``: ``openssl s_server -alpn h2``, which refuses a client that offers
  only other protocols with alert 120, ``no_application_protocol``, as servers built on
  rustls (granian ``--http 2``), Go or OpenSSL's own ALPN callback do. It speaks no HTTP at
  all: what is tested is its handshake.

``Relay`` stands in front of any of them (or of a proxy, ending TLS for it) and counts the
connections a client makes, so a test knows that one call was one connection.

Each starts on a free port and is stopped on the way out. nginx and openssl run as child
processes in the foreground with all their files in a temporary directory; a server that
cannot start fails the test, it is never skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Self

import pytest

from .markers import require

if TYPE_CHECKING:
    from collections.abc import Generator

    import trustme

#: Seconds a server may take to start.
START_WITHIN = 15.0
#: Seconds a server may take to stop before it is killed.
STOP_WITHIN = 5.0

#: SETTINGS (type 4) on stream 0: three settings of 6 bytes each, as servers open with.
SETTINGS = (
    b"\x00\x00\x12\x04\x00\x00\x00\x00\x00"  # length 18, SETTINGS, no flags, stream 0
    b"\x00\x03\x00\x00\x00\x80"  # MAX_CONCURRENT_STREAMS 128
    b"\x00\x04\x00\x01\x00\x00"  # INITIAL_WINDOW_SIZE 65536
    b"\x00\x05\x00\xff\xff\xff"  # MAX_FRAME_SIZE 2^24 - 1
)
#: GOAWAY (type 7) on stream 0: last stream 0, PROTOCOL_ERROR (1).
GOAWAY = b"\x00\x00\x08\x07\x00\x00\x00\x00\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x01"
#: What an HTTP/2 client opens its connection with (RFC 9113, 3.4).
CLIENT_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

_NGINX_CONFIG = """\
daemon off;
master_process off;
pid {root}/nginx.pid;
error_log {root}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {root}/access.log;
    client_body_temp_path {root}/client_body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    server {{
        listen 127.0.0.1:{port} {listen};
{tls}        location = /ok {{ return 200 "ok\\n"; }}
        location / {{ return 404; }}
    }}
}}
"""
# daemon off and master_process off: one process, the child the fixture waits on; no
# worker that would change user when run as root. Every file in the temporary directory.


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def first_bytes(port: int, request: bytes, within: float) -> bytes:
    """What a server on *port* sends for *request* (an HTTP/1.1 one) until it closes.

    Reads for at most *within* seconds in all; returns what came by then.
    """
    received = b""
    deadline = time.monotonic() + within
    with socket.create_connection(("127.0.0.1", port), within) as sock:
        sock.sendall(request)
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                chunk = sock.recv(4096)
            except TimeoutError:
                break
            if not chunk:
                break
            received += chunk
    return received


def _wait_listening(process: subprocess.Popen[bytes], port: int, name: str, log: Path) -> None:
    deadline = time.monotonic() + START_WITHIN
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{name} did not start on port {port}:\n{_tail(log)}")
        time.sleep(0.05)


def _tail(*logs: Path) -> str:
    text = ""
    for log in logs:
        with contextlib.suppress(OSError):
            text += log.read_text(errors="replace")[-2000:]
    return text


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(STOP_WITHIN)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class Nginx:
    """A running nginx: ``port``, ``url``, and ``errors()`` from its error log."""

    def __init__(self, root: Path, port: int, *, tls: bool) -> None:
        self.root = root
        self.port = port
        self.tls = tls

    @property
    def url(self) -> str:
        """Its base URL (``http://`` or ``https://``)."""
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def errors(self) -> str:
        """Its error log so far (it logs each connection it refuses, at ``info``)."""
        return _tail(self.root / "error.log")


@contextlib.contextmanager
def running_nginx(*, tls: trustme.LeafCert | None = None) -> Generator[Nginx, None, None]:
    """Start nginx on a free loopback port, HTTP/2 only (cleartext); stop it on the way out.

    With *tls*, it listens with TLS and that certificate, offering ``h2`` and ``http/1.1``.
    Cleartext, it must answer an HTTP/1.1 request with an HTTP/2 SETTINGS frame, or the
    test fails: what it stands for is a server that speaks only HTTP/2.
    """
    require("nginx")
    if tls is not None:
        require("tls")
    binary = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
    if binary is None:
        pytest.fail("nginx is not installed (apt-get install nginx: nox does)")
    with tempfile.TemporaryDirectory(prefix="inkit-nginx-") as directory:
        root = Path(directory)
        port = free_port()
        listen, tls_lines = "http2", ""
        if tls is not None:
            tls.private_key_and_cert_chain_pem.write_to_path(str(root / "server.pem"))
            listen = "ssl http2"
            tls_lines = (
                f"        ssl_certificate {root}/server.pem;\n"
                f"        ssl_certificate_key {root}/server.pem;\n"
            )
        config = _NGINX_CONFIG.format(root=root, port=port, listen=listen, tls=tls_lines)
        (root / "nginx.conf").write_text(config)
        with (root / "nginx.out").open("wb") as output:
            # -e: the log for what goes wrong before the config is read (default: /var/log).
            process = subprocess.Popen(
                [binary, "-p", str(root), "-c", str(root / "nginx.conf"), "-e", "stderr"],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_listening(process, port, "nginx", root / "nginx.out")
            if tls is None:
                answer = first_bytes(port, b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n", START_WITHIN)
                if answer[3:4] != SETTINGS[3:4]:  # a frame of the type SETTINGS
                    pytest.fail(f"nginx did not answer HTTP/1.1 with HTTP/2 SETTINGS: {answer!r}")
            yield Nginx(root, port, tls=tls is not None)
        finally:
            _stop(process)


@contextlib.contextmanager
def running_openssl_h2(certificate: trustme.LeafCert, *options: str) -> Generator[int, None, None]:
    """Start ``openssl s_server -alpn h2`` on a free loopback port; yield the port.

    It refuses a client that offers by ALPN only protocols other than ``h2`` (alert 120),
    and admits one that offers ``h2``, or none. *options* are more of s_server's
    (``-tls1_3``: TLS 1.3 only).
    """
    require("openssl")
    require("tls")
    binary = shutil.which("openssl")
    if binary is None:
        pytest.fail("openssl is not installed (apt-get install openssl)")
    with tempfile.TemporaryDirectory(prefix="inkit-openssl-") as directory:
        root = Path(directory)
        port = free_port()
        pem = root / "server.pem"
        certificate.private_key_and_cert_chain_pem.write_to_path(str(pem))
        command = [binary, "s_server", "-accept", f"127.0.0.1:{port}", "-quiet"]
        command += ["-cert", str(pem), "-key", str(pem), "-alpn", "h2", *options]
        with (root / "openssl.out").open("wb") as output:
            # stdin stays open (a pipe): s_server sends what it reads there to its client.
            process = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=output, stderr=subprocess.STDOUT
            )
        try:
            _wait_listening(process, port, "openssl s_server", root / "openssl.out")
            yield port
        finally:
            if process.stdin is not None:
                process.stdin.close()
            _stop(process)


class H2TLSServer:
    """A TLS server offering ALPN ``h2`` only, that answers in HTTP/2 frames; in the loop.

    ``async with H2TLSServer(context) as server:`` listens on ``server.url``; each
    connection is sent SETTINGS at once, then GOAWAY (PROTOCOL_ERROR) once the client has
    sent something other than the HTTP/2 client preface, and is closed once the client
    closes (or after ``STOP_WITHIN`` s). ``alpn`` lists the protocol each handshake agreed
    on (``None``: none); ``received`` what each client sent first.
    """

    def __init__(self, context: ssl.SSLContext) -> None:
        """Serve with *context* (a server context with its certificate); its ALPN is set."""
        context.set_alpn_protocols(["h2"])
        self.context = context
        self.port = 0
        self.alpn: list[str | None] = []
        self.received: list[bytes] = []
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        """Its base URL."""
        return f"https://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Self:
        """Start listening on a free loopback port."""
        require("loopback")
        require("tls")
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.context)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Stop listening and close every connection."""
        if self._server is not None:
            self._server.close()
            for writer in self._writers:
                writer.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        ssl_object = writer.get_extra_info("ssl_object")
        self.alpn.append(ssl_object.selected_alpn_protocol() if ssl_object else None)
        try:
            writer.write(SETTINGS)
            await writer.drain()
            async with asyncio.timeout(STOP_WITHIN):
                first = await reader.read(len(CLIENT_PREFACE))
                self.received.append(first)
                if first != CLIENT_PREFACE:
                    writer.write(GOAWAY)
                    await writer.drain()
                # Until the client closes: closing first could reset its unread answer.
                while await reader.read(4096):
                    pass
        except (OSError, TimeoutError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()


class Relay:
    """A TCP relay on 127.0.0.1 to another port, that counts the connections made to it.

    ``async with Relay(port) as relay:`` listens on ``relay.port`` and pipes each connection
    to *port* on 127.0.0.1, both ways, until either side closes; ``connections`` counts
    them, so a test knows how many times a client really connected, whatever it logged.
    With *tls* (a server context), it ends TLS itself and relays what is inside in clear
    (as a TLS proxy in front of a plain one); ``alpn`` lists what each handshake agreed on.
    """

    def __init__(self, port: int, *, tls: ssl.SSLContext | None = None) -> None:
        """Relay to *port*; end TLS with *tls*, if given."""
        self.target = port
        self.tls = tls
        self.port = 0
        self.connections = 0
        self.alpn: list[str | None] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def url(self, scheme: str, path: str = "") -> str:
        """Its URL with *scheme* (``http``, ``https``) and *path*."""
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    async def __aenter__(self) -> Self:
        """Start listening on a free loopback port."""
        require("loopback")
        if self.tls is not None:
            require("tls")
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Stop listening, and end every relayed connection."""
        if self._server is not None:
            self._server.close()
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        ssl_object = writer.get_extra_info("ssl_object")
        self.alpn.append(ssl_object.selected_alpn_protocol() if ssl_object else None)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            async with asyncio.timeout(START_WITHIN):
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
            try:
                await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
            finally:
                up_writer.close()
        except (OSError, TimeoutError, ssl.SSLError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy *reader* to *writer* until *reader* ends; then end *writer*'s side."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (OSError, ssl.SSLError):
        writer.close()
