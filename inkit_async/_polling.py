"""Following a batch until it finishes: ``watch`` yields snapshots, ``wait`` returns the last."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ._exceptions import WaitTimeoutError
from ._validate import check_optional_seconds, check_seconds

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from ._deadline import CallDeadline
    from ._models import Batch

__all__ = ["check_poll_interval", "check_wait_timeout", "wait_until_finished", "watch_batch"]


def check_poll_interval(value: object) -> float:
    """Refuse a poll interval that is not a finite number of seconds > 0."""
    return float(check_seconds("poll_interval", value, above=True))


def check_wait_timeout(value: object) -> float | None:
    """Refuse a wait timeout that is neither ``None`` nor a finite number of seconds > 0."""
    seconds = check_optional_seconds("timeout", value, above=True)
    return None if seconds is None else float(seconds)


def _fingerprint(batch: Batch) -> tuple[object, ...]:
    # What a watcher cares about: the status and the counters.
    return (batch.status, batch.total, batch.destinations)


async def watch_batch(
    fetch: Callable[[], Awaitable[Batch]],
    poll_interval: float,
    *,
    until: CallDeadline | None = None,
) -> AsyncIterator[Batch]:
    """Poll with *fetch*; yield the first snapshot and each changed one, until finished.

    Polls start no closer together than *poll_interval* seconds: the wait after a poll
    is the interval minus the time the poll took. With a deadline (*until*, ``wait``'s),
    a next poll that would start at or after it fails the call at once.

    Raises:
        DeadlineExceededError: The next poll would start after *until*'s end.
    """
    loop = asyncio.get_running_loop()
    seen: tuple[object, ...] | None = None
    while True:
        started = loop.time()
        batch = await fetch()
        fingerprint = _fingerprint(batch)
        if fingerprint != seen:
            seen = fingerprint
            yield batch
        if batch.is_finished:
            return
        now = loop.time()
        pause = max(0.0, started + poll_interval - now)
        if until is not None and until.end is not None and now + pause >= until.end:
            raise until.error("poll")
        await asyncio.sleep(pause)


async def wait_until_finished(
    snapshots: AsyncIterator[Batch], timeout: float | None, batch_id: str
) -> Batch:
    """Consume *snapshots* until the finished one; give up after *timeout* seconds."""
    last: Batch | None = None
    deadline = asyncio.timeout(timeout)
    try:
        async with deadline:
            async for snapshot in snapshots:
                last = snapshot
    except TimeoutError:
        if not deadline.expired():
            raise
        state = f"; last status {last.status!s}" if last is not None else ""
        raise WaitTimeoutError(
            f"batch {batch_id} did not finish within {timeout:g} s{state}", batch=last
        ) from None
    if last is None:  # pragma: no cover - watch always yields before it ends
        raise AssertionError("watch ended without a snapshot")
    return last
