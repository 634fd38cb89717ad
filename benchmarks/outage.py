"""``python -m benchmarks.outage``: 10,000 lookups through a 3 s run of 502s, defaults only.

The server is ``FakeInkit`` served by uvicorn in a process of its own, behind a thin
ASGI layer that answers 502 (an HTML page, as a proxy does) for every request that
arrives between 0.5 s and 3.5 s after ``/start``. The client runs ``get_many(ids,
return_exceptions=True)`` with the SDK's defaults and reports failed lookups, requests
sent (the server's count), the pauses the throttle chose, and the wall time. The
target (docs/rate-limits.md): 0 failed lookups, requests sent <= 1.1 x N.

Options: ``--lookups N`` (10,000), ``--start S`` (0.5), ``--length S`` (3).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time
from typing import Any

import httpx


def serve(port: int, lookups: int, start: float, length: float) -> None:
    """Run the fake with its 502 window (in the server process)."""
    import uvicorn  # noqa: PLC0415 - only the server process needs it

    from inkit_async.testing import FakeInkit  # noqa: PLC0415

    fake = FakeInkit(seed=1, docs_per_poll=0)
    for number in range(lookups):
        fake.add_batch(batch_id=f"rb_{number}")
    inner = fake.app
    state: dict[str, Any] = {"started": None, "bad_gateway": 0}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await inner(scope, receive, send)
            return
        if scope["path"] in {"/start", "/stats"}:
            if scope["path"] == "/start":
                state["started"] = time.monotonic()
            body = json.dumps({**state, "requests": len(fake.requests)}).encode()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": body})
            return
        started = state["started"]
        if started is not None and start <= time.monotonic() - started < start + length:
            state["bad_gateway"] += 1
            headers = [(b"content-type", b"text/html")]
            await send({"type": "http.response.start", "status": 502, "headers": headers})
            await send({"type": "http.response.body", "body": b"<h1>502 Bad Gateway</h1>"})
            return
        await inner(scope, receive, send)

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


async def measure(port: int, lookups: int) -> dict[str, Any]:
    """Run the lookups through the outage and return the figures."""
    from inkit_async import AsyncInkit, PauseEvent, RetryEvent  # noqa: PLC0415

    root = f"http://127.0.0.1:{port}"
    events: list[object] = []
    async with AsyncInkit(
        "fake-inkit-token", base_url=f"{root}/v1", on_event=events.append
    ) as client:
        await client.batch.get("rb_0")
        async with httpx.AsyncClient() as http:
            await http.get(f"{root}/start")
            begun = time.perf_counter()
            results = await client.batch.get_many(
                [f"rb_{number}" for number in range(lookups)], return_exceptions=True
            )
            wall = time.perf_counter() - begun
            stats = (await http.get(f"{root}/stats")).json()
    failed = sum(isinstance(result, BaseException) for result in results)
    return {
        "lookups": lookups,
        "failed": failed,
        # Requests sent: the ones FakeInkit answered (less the warm-up) and the 502s.
        "requests": stats["requests"] - 1 + stats["bad_gateway"],
        "bad_gateway": stats["bad_gateway"],
        "retries": sum(isinstance(event, RetryEvent) for event in events),
        "pauses": [round(e.seconds, 2) for e in events if isinstance(e, PauseEvent)],
        "wall_s": round(wall, 2),
    }


def free_port() -> int:
    """A port nothing listens on, for the server."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    """Start the server, measure, print the figures and the target line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.outage", description=__doc__)
    parser.add_argument("--lookups", type=int, default=10_000)
    parser.add_argument("--start", type=float, default=0.5)
    parser.add_argument("--length", type=float, default=3.0)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.lookups, args.start, args.length)
        return
    port = free_port()
    command = [sys.executable, "-m", "benchmarks.outage", "--serve", str(port)]
    command += ["--lookups", str(args.lookups), "--start", str(args.start)]
    command += ["--length", str(args.length)]
    server = subprocess.Popen(command)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/stats", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        figures = asyncio.run(measure(port, args.lookups))
    finally:
        server.terminate()
        server.wait(10)
    print(json.dumps(figures))
    ratio = figures["requests"] / figures["lookups"]
    met = figures["failed"] == 0 and ratio <= 1.1
    print(
        f"{'met    ' if met else 'NOT MET'}  {args.length:g} s of 502s, N={args.lookups:,}: "
        f"0 failed, requests <= 1.1 x N: {figures['failed']} failed, {ratio:.3f} x N",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
