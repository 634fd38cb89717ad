"""The test suite's one helper module: servers on 127.0.0.1, handlers and client checks.

``LoopbackServer`` is a scriptable HTTP/1.1 server. It runs in the test's own event loop
and speaks just enough HTTP/1.1 (keep-alive, Content-Length bodies) to serve the SDK. A
test decides what each request gets by queueing actions (``server.script(...)``) or by
setting ``server.handler`` (``echo``, ``echo_after_a_yield``, ``delayed``,
``held_until`` or its own); what the server saw is counted: requests, connections
opened, connections open now and at peak, requests in flight now and at peak.

``uvicorn_serving`` serves an ASGI app (``FakeInkit().app``) with uvicorn instead;
``Blackhole`` and ``closed_port`` are ports where connecting hangs or is refused;
``serves_at_full_width`` and ``cancel_all`` check a client after cancellations.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
import sys
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import unquote, urlsplit

import httpx
import pytest
import uvicorn

from .markers import require

if TYPE_CHECKING:
    from inkit_async import AsyncInkit

BATCH_JSON: dict[str, Any] = {
    "created_at": "2023-08-14T14:32:48.872931Z",
    "destinations": {"inkit_storage": {"completed": 1, "count": 1, "failed": 0, "in_progress": 0}},
    "id": "rb_6WtDgF7RGqdS5Uzea9neZJ",
    "name": "test",
    "status": "Completed",
    "total": 1,
}


@dataclass
class Request:
    """One request as the server read it."""

    method: str
    target: str  # the raw request target, percent-encoding intact
    headers: dict[str, str]
    body: bytes
    connection: int  # which connection (1, 2, ...) carried it
    received_at: float = 0.0  # the event loop's clock when the request was read

    @property
    def path(self) -> str:
        """The raw path, without the query."""
        return urlsplit(self.target).path

    @property
    def query(self) -> str:
        """The raw query string."""
        return urlsplit(self.target).query

    @property
    def last_segment(self) -> str:
        """The last path segment, percent-decoded."""
        return unquote(self.path.rsplit("/", 1)[-1])


@dataclass
class Respond:
    """Answer with a status, headers and a body (JSON-encoded unless bytes or str)."""

    status: int = 200
    body: Any = field(default_factory=lambda: dict(BATCH_JSON))
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    close: bool = False  # close the connection after answering
    silent_close: bool = False  # ... without announcing it (no Connection: close)

    def encode(self) -> bytes:
        """The full response, status line to body."""
        headers = {k.lower(): v for k, v in self.headers.items()}
        if isinstance(self.body, bytes):
            payload = self.body
        elif isinstance(self.body, str):
            payload = self.body.encode()
            headers.setdefault("content-type", "text/plain; charset=utf-8")
        else:
            payload = json.dumps(self.body).encode()
            headers.setdefault("content-type", "application/json")
        headers.setdefault("content-length", str(len(payload)))
        if self.close:
            headers["connection"] = "close"
        head = f"HTTP/1.1 {self.status} {_REASONS.get(self.status, 'Status')}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        return head.encode() + b"\r\n" + payload


@dataclass
class Drop:
    """Close the connection without answering (after an optional delay)."""

    delay: float = 0.0


@dataclass
class DropMidBody:
    """Send the status line, headers and part of a body, then close the connection."""

    status: int = 200


@dataclass
class Hang:
    """Accept the request and never answer; hold the socket until the client goes."""


@dataclass
class HangMidBody:
    """Send the status line, headers and part of the body; hold the socket until the client goes."""


@dataclass
class Oversized:
    """Answer 200 with a body of *size* bytes streamed in chunks (chunked encoding)."""

    size: int
    declare_length: bool = False


@dataclass
class Raw:
    """Write these bytes as the whole answer, then close (for malformed responses)."""

    data: bytes
    close: bool = True  # False: keep the connection open for more requests


@dataclass
class Trickle:
    """Answer 200 with a batch, sent in *pieces* parts *interval* seconds apart.

    Every gap is far shorter than a per-phase read timeout; only an end-to-end deadline
    shorter than ``pieces * interval`` stops it.
    """

    pieces: int = 10
    interval: float = 0.05


@dataclass
class Binary:
    """Answer with *size* bytes of ``binary_body`` (a download), written in *piece* parts.

    *stop_after*: close the connection after that many bytes of body; *hang_after*: stop
    sending after that many and hold the socket until the client goes. Without
    *declare_length* the body goes chunked. ``sent`` counts the body bytes written.
    """

    size: int
    status: int = 200
    declare_length: bool = True
    stop_after: int | None = None
    hang_after: int | None = None
    piece: int = 65536
    headers: dict[str, str] = field(default_factory=dict)
    sent: int = 0


Action = Respond | Drop | DropMidBody | Hang | HangMidBody | Oversized | Raw | Trickle | Binary
Handler = Callable[[Request], Action | Awaitable[Action]]

_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    409: "Conflict",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


_PATTERN = bytes(range(256)) * 256  # 64 KiB


def binary_body(size: int, start: int = 0) -> bytes:
    """Bytes *start* to *start* + *size* of the endless pattern ``Binary`` serves."""
    offset = start % 256
    out = bytearray()
    while len(out) < size:
        out += _PATTERN[offset:] if not out else _PATTERN
    return bytes(out[:size])


def echo(request: Request) -> Respond:
    """Answer with a batch whose id is the requested one (the default handler)."""
    return Respond(body={**BATCH_JSON, "id": request.last_segment})


async def echo_after_a_yield(request: Request) -> Respond:
    """Answer like ``echo``, after letting other requests in (so they overlap)."""
    await asyncio.sleep(0)
    return echo(request)


def delayed(seconds: float) -> Handler:
    """A handler that answers like ``echo`` after *seconds*."""

    async def handler(request: Request) -> Respond:
        await asyncio.sleep(seconds)
        return echo(request)

    return handler


def held_until(release: asyncio.Event) -> Handler:
    """A handler that answers like ``echo`` only once *release* is set."""

    async def handler(request: Request) -> Respond:
        await release.wait()
        return echo(request)

    return handler


class LoopbackServer:
    """The server; use ``async with LoopbackServer() as server:``."""

    def __init__(
        self,
        handler: Handler | None = None,
        host: str = "127.0.0.1",
        *,
        sock: socket.socket | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.handler: Handler = handler or echo
        self.host = host
        self._sock = sock  # an already listening socket to serve on, if given
        self._tls = tls  # serve HTTPS with this server-side context
        self.requests: list[Request] = []
        self.connections_opened = 0
        self.open_connections = 0
        self.peak_open_connections = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self._script: deque[Action] = deque()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def url(self) -> str:
        """The API root to pass as ``base_url``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self._tls else 'http'}://{host}:{self.port}/v1"

    def script(self, *actions: Action) -> None:
        """Answer the next requests with *actions*, in order, then fall back to the handler."""
        self._script.extend(actions)

    async def __aenter__(self) -> Self:
        """Start listening on an ephemeral port."""
        require("loopback")
        if self._tls is not None:
            require("tls")
        if self._sock is not None:
            self._server = await asyncio.start_server(self._serve, sock=self._sock, ssl=self._tls)
        else:
            self._server = await asyncio.start_server(self._serve, self.host, 0, ssl=self._tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Stop listening and close every connection."""
        assert self._server is not None
        self._server.close()
        writers = list(self._writers)
        for writer in writers:
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        # A TLS close waits for the peer's close_notify, which on a loaded machine (or
        # through a proxy's tunnel) can come late: give it a moment, then abort what is
        # left, so that no socket outlives the server (uvloop refuses to close a loop
        # that still has one, and asyncio warns).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2):
                await asyncio.gather(
                    *(writer.wait_closed() for writer in writers), return_exceptions=True
                )
        for writer in writers:
            writer.transport.abort()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 1)

    async def wait_for_in_flight(self, count: int, within: float = 5.0) -> None:
        """Return once at least *count* requests are being answered at the same time."""
        await wait_until(lambda: self.in_flight >= count, within, f"{count} in flight")

    async def wait_for_requests(self, count: int, within: float = 5.0) -> None:
        """Return once the server has read at least *count* requests in all."""
        await wait_until(lambda: len(self.requests) >= count, within, f"{count} requests")

    async def wait_for_open_connections(self, at_most: int, within: float = 5.0) -> None:
        """Return once at most *at_most* connections are open (closes arrive asynchronously)."""
        await wait_until(
            lambda: self.open_connections <= at_most, within, f"<= {at_most} open connections"
        )

    async def close_idle_connections(self, *, settle: bool = True) -> None:
        """Close every connection from the server side (as a keep-alive timeout would).

        With *settle*, wait 50 ms so the client has seen the closes; without, return after
        one loop iteration: the closes are on the wire, the client has not read them yet.
        """
        for writer in list(self._writers):
            writer.close()
        await asyncio.sleep(0.05 if settle else 0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)  # type: ignore[arg-type]
        self.connections_opened += 1
        number = self.connections_opened
        self.open_connections += 1
        self.peak_open_connections = max(self.peak_open_connections, self.open_connections)
        self._writers.add(writer)
        try:
            while True:
                request = await self._read_request(reader, number)
                if request is None:
                    return
                self.requests.append(request)
                self.in_flight += 1
                self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
                try:
                    keep_going = await self._answer(request, reader, writer)
                finally:
                    self.in_flight -= 1
                if not keep_going:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        except asyncio.CancelledError:
            # Only __aexit__ cancels this task. Python 3.11's stream callback calls
            # task.exception() on it and logs the CancelledError as an error; ending
            # normally keeps shutdown quiet.
            return
        finally:
            self.open_connections -= 1
            self._writers.discard(writer)
            writer.close()
            self._tasks.discard(task)  # type: ignore[arg-type]

    async def _read_request(self, reader: asyncio.StreamReader, number: int) -> Request | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        body = await reader.readexactly(length) if length else b""
        received_at = asyncio.get_running_loop().time()
        return Request(method, target, headers, body, number, received_at)

    async def _answer(  # noqa: PLR0912 - one branch per action
        self, request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Carry out the action for *request*; return whether the connection stays open."""
        if self._script:
            action = self._script.popleft()
        else:
            result = self.handler(request)
            action = await result if isinstance(result, Awaitable) else result
        match action:
            case Respond():
                if action.delay:
                    await asyncio.sleep(action.delay)
                writer.write(action.encode())
                await writer.drain()
                return not (action.close or action.silent_close)
            case Drop():
                if action.delay:
                    await asyncio.sleep(action.delay)
                return False
            case DropMidBody():
                partial = b'{"id": "rb_partial", "status": "Comp'
                writer.write(
                    f"HTTP/1.1 {action.status} OK\r\ncontent-type: application/json\r\n"
                    f"content-length: {len(partial) * 4}\r\n\r\n".encode()
                    + partial
                )
                await writer.drain()
                return False
            case Raw():
                writer.write(action.data)
                await writer.drain()
                return not action.close
            case Hang() | HangMidBody():
                if isinstance(action, HangMidBody):
                    partial = b'{"id": "rb_partial", "status": "Comp'
                    writer.write(
                        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                        + f"content-length: {len(partial) * 4}\r\n\r\n".encode()
                        + partial
                    )
                    await writer.drain()
                await reader.read()  # returns when the client closes its end
                return False
            case Trickle():
                await self._trickle(request, writer, action)
                return True
            case Binary():
                return await self._binary(reader, writer, action)
            case Oversized():
                headers = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                if action.declare_length:
                    writer.write(f"{headers}content-length: {action.size}\r\n\r\n".encode())
                    writer.write(b" " * min(action.size, 65536))
                    await writer.drain()
                    return False
                writer.write(f"{headers}transfer-encoding: chunked\r\n\r\n".encode())
                chunk = b" " * 65536
                sent = 0
                while sent < action.size:
                    writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    await writer.drain()
                    sent += len(chunk)
                writer.write(b"0\r\n\r\n")
                await writer.drain()
                return True
        raise AssertionError(f"unknown action {action!r}")  # pragma: no cover

    @staticmethod
    async def _binary(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, action: Binary
    ) -> bool:
        """Serve a ``Binary`` action; return whether the connection stays open."""
        fields = {"content-type": "application/pdf", **action.headers}
        if action.declare_length:
            fields.setdefault("content-length", str(action.size))
        else:
            fields["transfer-encoding"] = "chunked"
        head = f"HTTP/1.1 {action.status} {_REASONS.get(action.status, 'Status')}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in fields.items())
        writer.write(head.encode("latin-1") + b"\r\n")
        cut = min(n for n in (action.stop_after, action.hang_after, action.size) if n is not None)
        while action.sent < cut:
            piece = binary_body(min(action.piece, cut - action.sent), action.sent)
            writer.write(piece if action.declare_length else b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
            action.sent += len(piece)
        if action.hang_after is not None and action.sent < action.size:
            await reader.read()  # returns when the client closes its end
            return False
        if action.sent < action.size:
            return False  # stop_after: close mid-body
        if not action.declare_length:
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        return True

    @staticmethod
    async def _trickle(request: Request, writer: asyncio.StreamWriter, action: Trickle) -> None:
        """Send ``echo``'s answer in ``action.pieces`` parts, ``action.interval`` s apart."""
        answer = echo(request).encode()
        size = -(-len(answer) // action.pieces)
        for start in range(0, len(answer), size):
            if start:
                await asyncio.sleep(action.interval)
            writer.write(answer[start : start + size])
            await writer.drain()


async def wait_until(condition: Callable[[], bool], within: float, what: str) -> None:
    """Poll *condition* until it holds; fail the test (AssertionError) after *within* s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.002)


def html_page(status: int) -> Respond:
    """An HTML error page such as a load balancer serves for 502 or 503."""
    reason = _REASONS.get(status, "Error")
    body = f"<html><head><title>{status} {reason}</title></head><body><h1>{reason}</h1></body>"
    return Respond(status=status, body=body, headers={"Content-Type": "text/html"})


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on, so connecting to it is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Blackhole:
    """A listener on 127.0.0.1 whose accept queue is full, so new connects hang.

    The kernel completes one handshake for the queue (``listen(0)``); this class fills
    that place itself, and every later SYN is dropped: a connect that never finishes,
    on loopback. Use ``with Blackhole() as hole:`` and ``hole.url`` as ``base_url``.
    """

    def __init__(self) -> None:
        self._listener = socket.socket()
        self._filler = socket.socket()
        self.port = 0

    @property
    def url(self) -> str:
        """The API root to pass as ``base_url``."""
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> Self:
        """Listen, and take the one place in the accept queue."""
        require("loopback")
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(0)
        self.port = int(self._listener.getsockname()[1])
        self._filler.connect(("127.0.0.1", self.port))
        return self

    def listener(self) -> socket.socket:
        """Free the accept queue and hand the listening socket over, to serve on it.

        ``LoopbackServer(sock=hole.listener())`` turns the hole into a working server
        on the same port, so a client configured for it can be checked afterwards.
        """
        self._filler.close()
        return self._listener

    def __exit__(self, *exc_info: object) -> None:
        """Close both sockets."""
        self._filler.close()
        self._listener.close()


@contextlib.asynccontextmanager
async def uvicorn_serving(app: Any, *, start_within: float = 10.0) -> AsyncIterator[str]:
    """Serve the ASGI *app* with uvicorn on 127.0.0.1; yield its API root (``.../v1``).

    The socket is bound before uvicorn starts, so nothing can take the port in between;
    a start-up that takes longer than *start_within* seconds fails the test; on the way
    out the server stops (within 10 s, or the test fails) and its socket is closed.
    """
    require("uvicorn")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + start_within
        while not server.started:
            if task.done():
                pytest.fail(f"uvicorn stopped before it started: {task.exception()!r}")
            if loop.time() > deadline:
                pytest.fail(f"uvicorn did not start within {start_within} s")
            await asyncio.sleep(0.005)
    except BaseException:
        task.cancel()  # a start-up that hangs does not heed should_exit
        await asyncio.gather(task, return_exceptions=True)
        sock.close()
        raise
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        done, _ = await asyncio.wait({task}, timeout=10)
        sock.close()
        if not done:
            task.cancel()
            pytest.fail("uvicorn did not stop within 10 s")
        if not task.cancelled() and task.exception() is not None:
            pytest.fail(f"uvicorn failed: {task.exception()!r}")


# -- checks of a client after cancellations ---------------------------------------------

#: A leaked connection would keep a caller waiting for the pool until this runs out.
#: aiohttp counts setting up a new connection as pool time too: 100 new sockets at once
#: took over 50 ms on a loaded 2-core box under coverage, so 1 s: far above a healthy
#: wait, far below a leak's.
STRICT_POOL = httpx.Timeout(5, pool=1.0)


async def serves_at_full_width(client: AsyncInkit, server: LoopbackServer, width: int) -> None:
    """Assert *width* new calls are in flight at the server at once, and all succeed.

    They go through a variant with a strict pool timeout that never retries, so a
    leaked concurrency slot stalls the check and a leaked pooled connection fails it.
    """
    everyone_in = asyncio.Event()

    async def handler(request: Request) -> Respond:
        if server.in_flight >= width:
            everyone_in.set()
        await everyone_in.wait()
        return echo(request)

    server.handler = handler
    check = client.with_options(timeout=STRICT_POOL, max_retries=0)
    ids = [f"check_{n}" for n in range(width)]
    async with asyncio.timeout(10):
        batches = await asyncio.gather(*(check.batch.get(batch_id) for batch_id in ids))
    assert [batch.id for batch in batches] == ids
    assert server.open_connections <= width


async def cancel_all(tasks: list[asyncio.Task[Any]]) -> None:
    """Cancel *tasks* and wait (briefly) until each has ended as cancelled."""
    for task in tasks:
        task.cancel()
    async with asyncio.timeout(2):
        results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(result, asyncio.CancelledError) for result in results)


def answer_bytes(
    status: int = 200,
    body: bytes = b"",
    *,
    reason: str | None = None,
    headers: dict[str, str] | None = None,
) -> bytes:
    """One whole HTTP/1.1 answer, byte for byte (for ``Raw``): any reason phrase, any headers.

    ``Content-Length`` is added unless *headers* has it.
    """
    fields = {"content-length": str(len(body)), **(headers or {})}
    head = f"HTTP/1.1 {status} {_REASONS.get(status, 'Status') if reason is None else reason}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in fields.items())
    return head.encode("latin-1") + b"\r\n" + body


# -- the command line, as a real subprocess -----------------------------------------------


@dataclass
class Run:
    """What a run of the command line printed and returned."""

    code: int
    out: str
    err: str


async def run_cli(*args: str, env: dict[str, str], cwd: str | None = None) -> Run:
    """Run ``python -m inkit_async ARGS`` with *env* as its whole environment (in *cwd*)."""
    require("subprocess")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "inkit_async",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=cwd,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return Run(process.returncode, out.decode(), err.decode())
