"""A loopback HTTP/1.1 keep-alive server that answers batch lookups, as cheaply as it can.

It runs in its own process (pinned to its own core by the runner) so that it is never the
bottleneck: a bare ``asyncio.Protocol``, no framework, one pre-rendered JSON body per id.
``GET /__stats`` answers its own counters (connections opened, requests, CPU seconds),
which the clients read before and after a run to report connections and the server's
CPU share.

Run: ``python -m benchmarks.server --latency-ms 50``; it prints its port on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

# The documented example response, with three destinations: a typical record.
BODY = (
    b'{"created_at": "2023-08-14T14:32:48.872931Z", "destinations": {'
    b'"inkit_storage": {"completed": 1, "count": 1, "failed": 0, "in_progress": 0}, '
    b'"salesforce": {"completed": 1, "count": 1, "failed": 0, "in_progress": 0}, '
    b'"magic_link": {"completed": 0, "count": 1, "failed": 0, "in_progress": 1}}, '
    b'"id": "%s", "name": "bench", "status": "In Progress", "total": 1}'
)
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"


class Stats:
    """What the server has done since it started."""

    opened = 0
    requests = 0

    @classmethod
    def as_json(cls) -> bytes:
        """The counters and this process's CPU seconds, as a JSON body."""
        return json.dumps(
            {"opened": cls.opened, "requests": cls.requests, "cpu": time.process_time()}
        ).encode()


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
        # Clients send GETs without bodies, so a request ends at its blank line.
        while (end := buffer.find(b"\r\n\r\n")) >= 0:
            head, buffer = buffer[:end], buffer[end + 4 :]
            self.answer(head[: head.find(b"\r\n")].split(b" ")[1])
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

    def write(self, response: bytes) -> None:
        """Send a response unless the client has gone."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(response)

    def connection_lost(self, exc: Exception | None) -> None:  # noqa: ARG002, D102
        self.transport = None


async def serve(latency: float) -> None:
    """Listen on a free loopback port, print it, serve until stdin closes."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: Connection(latency), "127.0.0.1", 0, backlog=4096, reuse_address=True
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    # The runner keeps our stdin open; when it closes (or dies), we stop.
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    async with server:
        await reader.read()


def main() -> None:
    """Parse the latency and serve."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args()
    asyncio.run(serve(args.latency_ms / 1000))


if __name__ == "__main__":
    main()
