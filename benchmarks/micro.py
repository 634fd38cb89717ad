"""Small measurements: decoding a record, importing cold, and instructions per lookup.

The last counts what flow control and tracing off add to a lookup at C=100.

``python -m benchmarks.micro`` prints all three.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import timeit
from datetime import datetime
from typing import Any

from inkit_async import Batch, BatchDestinations, BatchStatus, DestinationProgress
from inkit_async._converter import structure

from . import runner
from .server import BODY

PAYLOAD: dict[str, Any] = json.loads(BODY % b"rb_6WtDgF7RGqdS5Uzea9neZJ")


def by_hand(data: dict[str, Any]) -> Batch:
    """What a careful user would write without cattrs: the baseline for the converter."""
    try:
        status: BatchStatus | str = BatchStatus(data["status"])
    except ValueError:
        status = data["status"]
    return Batch(
        id=data["id"],
        name=data.get("name"),
        status=status,
        total=data["total"],
        created_at=datetime.fromisoformat(data["created_at"]),
        destinations=BatchDestinations(
            {name: DestinationProgress(**item) for name, item in data["destinations"].items()}
        ),
    )


def decode(repeat: int = 7, number: int = 20_000) -> dict[str, float]:
    """Microseconds per record for the SDK's converter and for the hand-written one."""
    assert structure(PAYLOAD, Batch) == by_hand(PAYLOAD)  # same record, or the race is moot
    timings = {}
    for name, call in (
        ("converter_us", lambda: structure(PAYLOAD, Batch)),
        ("by_hand_us", lambda: by_hand(PAYLOAD)),
    ):
        best = min(timeit.repeat(call, repeat=repeat, number=number))
        timings[name] = best / number * 1e6
    timings["ratio"] = timings["converter_us"] / timings["by_hand_us"]
    return timings


def import_time(repeat: int = 7) -> dict[str, float]:
    """Milliseconds for ``import inkit_async`` in a fresh interpreter (bytecode cached).

    Each sample is a new process, so nothing is imported yet: what a web app pays at
    start-up. The median of *repeat* samples.
    """
    code = (
        "import time; t = time.perf_counter(); import inkit_async; print(time.perf_counter() - t)"
    )
    subprocess.run([sys.executable, "-c", "import inkit_async"], check=True)  # write .pyc
    samples = [
        float(
            subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(repeat)
    ]
    return {"import_ms": statistics.median(samples) * 1e3}


#: The clients ``overhead`` counts (``benchmarks/worker.py``): the SDK's defaults without
#: opentelemetry (a default install), ``throttle=False``, and opentelemetry's API
#: importable with no provider (tracing off).
_OVERHEAD_CLIENTS = ("sdk", "sdk-nothrottle", "sdk-otel-off")
_INSTRUCTIONS = re.compile(r"Collected : (\d+)")


def _instructions(valgrind: str, client: str, n: int, base_url: str) -> int:
    """Instructions (callgrind's count) of the worker doing *n* lookups, start-up included."""
    spec = {"client": client, "base_url": base_url, "n": n, "concurrency": 100, "mode": "workers"}
    run = subprocess.run(
        [
            valgrind,
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            "-m",
            "benchmarks.worker",
            json.dumps(spec),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=runner.ROOT,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    found = _INSTRUCTIONS.search(run.stderr)
    assert found is not None, run.stderr[-2000:]
    return int(found.group(1))


def overhead(small: int = 2_000, large: int = 4_000) -> dict[str, float]:
    """Instructions per lookup of the client's process at C=100, 0 ms, counted by callgrind.

    The healthy-server scenario's worker against the bench server, under valgrind: a
    count, not a time, so the 3% targets of flow control and tracing off are checked
    without a quiet machine (the timed rows' noise on a shared one is larger than 3%).
    Only the client's process is counted, the kernel's work on its sockets not. Each
    client runs *small* and *large* lookups; the difference over ``large - small`` takes
    start-up out. ``flow_cost`` is the defaults over ``throttle=False``,
    ``tracing_cost`` the API present (no provider) over absent, minus one. Empty when
    valgrind is not installed.
    """
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return {}
    with runner.server(0) as base_url:
        per_lookup = {
            client: (
                _instructions(valgrind, client, large, base_url)
                - _instructions(valgrind, client, small, base_url)
            )
            / (large - small)
            for client in _OVERHEAD_CLIENTS
        }
    return {
        "lookup_instructions": per_lookup["sdk"],
        "flow_cost": per_lookup["sdk"] / per_lookup["sdk-nothrottle"] - 1,
        "tracing_cost": per_lookup["sdk-otel-off"] / per_lookup["sdk"] - 1,
    }


def everything() -> dict[str, float]:
    """Every figure of this module, in one dict."""
    return {**decode(), **import_time(), **overhead()}


if __name__ == "__main__":
    print(json.dumps(everything(), indent=2))
