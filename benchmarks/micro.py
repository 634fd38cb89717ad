"""Two small measurements: decoding one batch record, and importing the package cold."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import timeit
from datetime import datetime
from typing import Any

from inkit_async import Batch, BatchDestinations, BatchStatus, DestinationProgress
from inkit_async._converter import structure

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
