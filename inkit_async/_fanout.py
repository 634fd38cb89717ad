"""Bounded fan-out: many awaits on a fixed number of worker tasks."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, TypeVar

from ._exceptions import InkitError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable

__all__ = ["run_bounded"]

K = TypeVar("K")
V = TypeVar("V")


async def run_bounded(
    keys: Iterable[K],
    call: Callable[[K], Awaitable[V]],
    *,
    workers: int,
    return_exceptions: bool,
) -> dict[K, V | InkitError]:
    """Await ``call(key)`` for every key on at most *workers* tasks; map keys to results.

    Unlike ``asyncio.gather`` over one task per key, the cost in tasks is fixed, so a
    fan-out of 10,000 keys never stalls the event loop creating them. With
    *return_exceptions*, an ``InkitError`` becomes that key's result; otherwise the
    first failure is raised, no further key is started, and the calls under way are
    cancelled and awaited, so nothing they held (slots, connections) outlives this call.
    """
    queue = iter(keys)
    results: dict[K, V | InkitError] = {}
    failed = False

    async def worker() -> None:
        nonlocal failed
        # Workers share one iterator: each pulls the next key when it is free.
        for key in queue:
            if failed:
                return
            try:
                results[key] = await call(key)
            except InkitError as error:
                if not return_exceptions:
                    failed = True
                    raise
                results[key] = error
            except BaseException:
                failed = True
                raise

    tasks: list[asyncio.Task[None]] = []
    try:
        for _ in range(workers):
            tasks.append(asyncio.create_task(worker()))
            # One new worker per loop iteration: their first requests (and, with them,
            # new connections) spread out instead of arriving as one burst that blocks
            # the loop and comes back as one burst of responses.
            await asyncio.sleep(0)
        if tasks:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                if (error := task.exception()) is not None:
                    raise error
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return results
