"""A loopback HTTP/1.1 keep-alive server that answers batch lookups, as cheaply as it can.

It runs in its own process (pinned to its own core by the runner) so that it is never the
bottleneck: a bare ``asyncio.Protocol``, no framework, one pre-rendered JSON body per id.
``GET /__stats`` answers its own counters (connections opened, requests, CPU seconds),
which the clients read before and after a run to report connections and the server's
CPU share.

It also answers the other two calls ``python -m benchmarks.methods`` measures: a listing
(``GET /v1/batch?...``, whatever its query) with one pre-rendered page of 25 records with
distinct ids, the last page (``page_count`` 1); and a create (``POST /v1/batch``, its
body read by Content-Length and dropped) with ``201 {"id": "rb_new<count>"}``, the
creates counted in ``/__stats`` (``created``). A lookup by id is answered as before. The
rate-limited server (below) answers lookups only.

With ``--rate R --burst B [--retry-after S]`` it also enforces a per-token rate, as the
real API does: each ``X-Inkit-API-Token`` value has a token bucket of *B* requests,
refilled at *R* per second, and a request that finds its bucket empty is answered 429
``{"error":"Too many requests"}`` (with ``Retry-After: S`` when given). Its stats then
also count the 429s, and ``GET /__stats?timeline`` adds a timeline: per 100 ms since the
first request, how many requests came and how many were refused. ``GET /__stats?reset``
answers the stats, then starts the timeline afresh (from the next request) and refills
every bucket: a client calls it just before its timed run. The healthy server (no
``--rate``) runs exactly the code it always did.

With ``--tls`` it also serves HTTPS, the same answers over TLS on a second port: at start
it makes a certificate authority of its own (``trustme``), has it issue a certificate for
``127.0.0.1`` and writes the CA's certificate to a temporary file (removed when the server
stops), which clients trust through ``verify=`` or an ``ssl`` context. Both ports share
one set of counters, so ``/__stats`` (asked over plain HTTP) counts TLS connections too.

Run: ``python -m benchmarks.server --latency-ms 50``; it prints its port on stdout (with
``--tls``, a second line: the HTTPS port and the CA file's path, separated by a space).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import ssl
import sys
import tempfile
import time
from pathlib import Path

# The documented example response, with three destinations: a typical record.
BODY = (
    b'{"created_at": "2023-08-14T14:32:48.872931Z", "destinations": {'
    b'"inkit_storage": {"completed": 1, "count": 1, "failed": 0, "in_progress": 0}, '
    b'"salesforce": {"completed": 1, "count": 1, "failed": 0, "in_progress": 0}, '
    b'"magic_link": {"completed": 0, "count": 1, "failed": 0, "in_progress": 1}}, '
    b'"id": "%s", "name": "bench", "status": "In Progress", "total": 1}'
)
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
REFUSED_BODY = b'{"error":"Too many requests"}'
# A create's answer: the new batch's id (a counter, so every id differs).
CREATED_HEAD = (
    b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
)
CREATED_BODY = b'{"id": "rb_new%08d"}'
# A listing's answer: one page of 25 records with distinct ids, the last page (page_count
# 1), so the SDK's list() asks for exactly one. The same page answers every listing.
LIST_SIZE = 25
LIST_BODY = json.dumps(
    {
        "items": [json.loads(BODY % f"rb_list{i:04d}".encode()) for i in range(LIST_SIZE)],
        "metadata": {
            "pagination": {
                "current_page": 1,
                "page_count": 1,
                "page_size": LIST_SIZE,
                "total_count": LIST_SIZE,
            },
            "sort": {"field": "created_at", "direction": "desc"},
        },
    }
).encode()
LIST_PAGE = HEAD % len(LIST_BODY) + LIST_BODY
CONTENT_LENGTH = b"\r\ncontent-length:"
TOKEN_HEADER = b"\r\nx-inkit-api-token:"
#: The width of one timeline bucket, in seconds.
BUCKET = 0.1


class Stats:
    """What the server has done since it started."""

    opened = 0
    requests = 0
    created = 0  # creates answered (each one's id is rb_new + this count)
    refused = 0  # 429s (only a rate-limited server answers any)
    # The timeline of a rate-limited server: per BUCKET since `first`, requests and 429s.
    first: float | None = None
    timeline_requests: list[int] = []  # noqa: RUF012 - class-level counters, one server
    timeline_refused: list[int] = []  # noqa: RUF012

    @classmethod
    def as_json(cls, *, timeline: bool = False) -> bytes:
        """The counters and this process's CPU seconds (and the timeline), as a JSON body."""
        stats: dict[str, object] = {
            "opened": cls.opened,
            "requests": cls.requests,
            "refused": cls.refused,
            "created": cls.created,
            "cpu": time.process_time(),
        }
        if timeline:
            stats["timeline"] = {
                "bucket_s": BUCKET,
                "requests": cls.timeline_requests,
                "refused": cls.timeline_refused,
            }
        return json.dumps(stats).encode()

    @classmethod
    def record(cls, *, refused: bool) -> None:
        """Count one request of a rate-limited server in its timeline bucket."""
        now = time.monotonic()
        if cls.first is None:
            cls.first = now
        index = int((now - cls.first) / BUCKET)
        requests, refusals = cls.timeline_requests, cls.timeline_refused
        while len(requests) <= index:
            requests.append(0)
            refusals.append(0)
        requests[index] += 1
        if refused:
            refusals[index] += 1
            cls.refused += 1

    @classmethod
    def reset_timeline(cls) -> None:
        """Start the timeline again from the next request."""
        cls.first = None
        cls.timeline_requests = []
        cls.timeline_refused = []


def content_length(head: bytes) -> int:
    """The Content-Length of a request *head* (0 when it has none)."""
    lowered = head.lower()
    start = lowered.find(CONTENT_LENGTH)
    if start < 0:
        return 0
    start += len(CONTENT_LENGTH)
    stop = lowered.find(b"\r\n", start)
    return int(head[start : stop if stop >= 0 else len(head)])


class Connection(asyncio.Protocol):
    """One client connection: parse request heads, answer each in order."""

    def __init__(self, latency: float) -> None:
        """Answer each request after *latency* seconds (0: at once)."""
        self.latency = latency
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # noqa: D102
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        Stats.opened += 1

    def data_received(self, data: bytes) -> None:  # noqa: D102
        buffer = self.buffer + data
        # A GET has no body, so it ends at its blank line; a POST (a create) carries
        # Content-Length bytes after it, and waits here until they have all come.
        while (end := buffer.find(b"\r\n\r\n")) >= 0:
            if buffer.startswith(b"POST"):
                stop = end + 4 + content_length(buffer[:end])
                if len(buffer) < stop:
                    break
                buffer = buffer[stop:]
                self.created()
                continue
            head, buffer = buffer[:end], buffer[end + 4 :]
            target = head[: head.find(b"\r\n")].split(b" ")[1]
            if b"/batch?" in target:
                self.listed()
            else:
                self.answer(target)
        self.buffer = buffer

    def answer(self, target: bytes) -> None:
        """Write the response for one request target, now or after the latency."""
        stats = target.startswith(b"/__stats")
        if stats:
            body = Stats.as_json()
        else:
            Stats.requests += 1
            batch_id = target.rpartition(b"/batch/")[2].partition(b"?")[0]
            body = BODY % batch_id
        response = HEAD % len(body) + body
        if self.latency and not stats:  # the counters answer at once
            asyncio.get_running_loop().call_later(self.latency, self.write, response)
        else:
            self.write(response)

    def created(self) -> None:
        """Answer a create (``POST /batch``, its body read and dropped) 201 with a new id."""
        Stats.requests += 1
        Stats.created += 1
        body = CREATED_BODY % Stats.created
        self.later(CREATED_HEAD % len(body) + body)

    def listed(self) -> None:
        """Answer a listing (``GET /batch?...``) with its one page, whatever was asked."""
        Stats.requests += 1
        self.later(LIST_PAGE)

    def later(self, response: bytes) -> None:
        """Write *response* after the latency (at once with none)."""
        if self.latency:
            asyncio.get_running_loop().call_later(self.latency, self.write, response)
        else:
            self.write(response)

    def write(self, response: bytes) -> None:
        """Send a response unless the client has gone."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(response)

    def connection_lost(self, exc: Exception | None) -> None:  # noqa: ARG002, D102
        self.transport = None


class RateLimit:
    """A token bucket per API token: *burst* requests, refilled at *rate* per second."""

    def __init__(self, rate: float, burst: int, retry_after: float | None) -> None:
        """Allow *rate* requests per second per token, *burst* at once; refuse the rest."""
        self.rate = rate
        self.burst = float(burst)
        self.buckets: dict[bytes, tuple[float, float]] = {}  # token -> (level, when)
        extra = b"" if retry_after is None else b"Retry-After: %s\r\n" % f"{retry_after:g}".encode()
        self.refusal = (
            b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n%s\r\n%s" % (len(REFUSED_BODY), extra, REFUSED_BODY)
        )

    def admit(self, token: bytes) -> bool:
        """Take one request from *token*'s bucket; ``False``: it is empty, refuse."""
        now = time.monotonic()
        level, then = self.buckets.get(token, (self.burst, now))
        level = min(self.burst, level + (now - then) * self.rate)
        admitted = level >= 1.0
        self.buckets[token] = (level - 1.0 if admitted else level, now)
        return admitted


class LimitedConnection(Connection):
    """A connection to the rate-limited server: each request spends its token's bucket."""

    def __init__(self, latency: float, limit: RateLimit) -> None:
        """Answer after *latency* seconds, refusing what *limit* does not admit."""
        super().__init__(latency)
        self.limit = limit

    def data_received(self, data: bytes) -> None:  # noqa: D102
        buffer = self.buffer + data
        while (end := buffer.find(b"\r\n\r\n")) >= 0:
            head, buffer = buffer[:end], buffer[end + 4 :]
            self.answer_limited(head)
        self.buffer = buffer

    def answer_limited(self, head: bytes) -> None:
        """Answer one request head: the stats, a 429, or the batch."""
        target = head[: head.find(b"\r\n")].split(b" ")[1]
        if target.startswith(b"/__stats"):
            query = target.partition(b"?")[2]
            body = Stats.as_json(timeline=b"timeline" in query)
            self.write(HEAD % len(body) + body)
            if b"reset" in query:
                Stats.reset_timeline()
                self.limit.buckets.clear()  # every bucket full again
            return
        lowered = head.lower()
        start = lowered.find(TOKEN_HEADER)
        token = b""
        if start >= 0:
            start += len(TOKEN_HEADER)
            stop = lowered.find(b"\r\n", start)
            token = head[start : stop if stop >= 0 else len(head)].strip()
        if self.limit.admit(token):
            Stats.record(refused=False)
            self.answer(target)
            return
        Stats.requests += 1
        Stats.record(refused=True)
        if self.latency:
            asyncio.get_running_loop().call_later(self.latency, self.write, self.limit.refusal)
        else:
            self.write(self.limit.refusal)


def tls_context(directory: Path) -> tuple[ssl.SSLContext, Path]:
    """A server context with a certificate for 127.0.0.1 from a CA made now; the CA's file."""
    import trustme  # noqa: PLC0415 - only the TLS scenario needs it

    authority = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = directory / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    return context, ca_file


async def serve(latency: float, limit: RateLimit | None = None, *, tls: bool = False) -> None:
    """Listen on a free loopback port (and one for HTTPS), print them, serve until stdin closes."""
    loop = asyncio.get_running_loop()

    def factory() -> Connection:
        return Connection(latency) if limit is None else LimitedConnection(latency, limit)

    with tempfile.TemporaryDirectory(prefix="inkit-bench-ca-") as directory:
        async with contextlib.AsyncExitStack() as listening:
            server = await loop.create_server(
                factory, "127.0.0.1", 0, backlog=4096, reuse_address=True
            )
            await listening.enter_async_context(server)
            print(server.sockets[0].getsockname()[1], flush=True)
            if tls:
                context, ca_file = tls_context(Path(directory))
                secure = await loop.create_server(
                    factory, "127.0.0.1", 0, backlog=4096, reuse_address=True, ssl=context
                )
                await listening.enter_async_context(secure)
                print(secure.sockets[0].getsockname()[1], ca_file, flush=True)
            # The runner keeps our stdin open; when it closes (or dies), we stop.
            reader = asyncio.StreamReader()
            await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
            await reader.read()


def main() -> None:
    """Parse the latency (and the rate limit) and serve."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--rate", type=float, help="requests per second per token (default: none)")
    parser.add_argument("--burst", type=int, default=1, help="bucket size per token")
    parser.add_argument("--retry-after", type=float, help="seconds, sent with every 429")
    parser.add_argument("--tls", action="store_true", help="also serve HTTPS (a CA made now)")
    args = parser.parse_args()
    if args.rate is not None and not (args.rate > 0 and args.burst >= 1):
        parser.error("--rate must be > 0 and --burst >= 1")
    limit = None if args.rate is None else RateLimit(args.rate, args.burst, args.retry_after)
    asyncio.run(serve(args.latency_ms / 1000, limit, tls=args.tls))


if __name__ == "__main__":
    main()
