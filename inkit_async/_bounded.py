"""Bounded fan-out of any calls: many awaits on a fixed number of worker tasks.

For fan-outs that are not lookups (``download_many``): each key's call streams a body
to a file, which no other caller can join, so it needs no queue shared across callers
(``_fanout.py``), only a bound on how many run at once.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Final, TypeVar, cast

from ._exceptions import InkitError

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence

__all__ = ["as_completed_bounded", "run_bounded"]

K = TypeVar("K")
V = TypeVar("V")


_END: Final = object()


class _Crash:
    """A worker's failure that is not an ``InkitError``: the consumer re-raises it."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


async def as_completed_bounded(
    keys: Sequence[K],
    call: Callable[[K], Awaitable[V]],
    *,
    workers: int,
    stop_on_error: bool = False,
) -> AsyncGenerator[tuple[K, V | InkitError]]:
    """Await ``call(key)`` for every key on at most *workers* tasks; yield in completion order.

    Unlike ``asyncio.gather`` over one task per key, the cost in tasks is fixed, so a
    fan-out of 10,000 keys never stalls the event loop creating them. An ``InkitError``
    is that key's result; any other exception ends the iteration by propagating. When the
    iteration ends early (``break``, an exception, cancellation), the calls under way are
    cancelled and awaited when the generator closes, so nothing they held (slots,
    connections) outlives it. With *stop_on_error*, no key is started after the first
    ``InkitError``.
    """
    pending = iter(keys)
    done: asyncio.Queue[tuple[K, V | InkitError] | _Crash] = asyncio.Queue()
    failed = False

    async def worker() -> None:
        nonlocal failed
        # Workers share one iterator: each pulls the next key when it is free.
        while True:
            key = next(pending, _END) if not failed else _END
            if key is _END:
                return
            key = cast("K", key)
            try:
                result: V | InkitError = await call(key)
            except InkitError as error:
                failed = stop_on_error
                result = error
            except BaseException as error:
                done.put_nowait(_Crash(error))
                raise
            done.put_nowait((key, result))

    tasks: list[asyncio.Task[None]] = []
    try:
        for _ in range(min(workers, len(keys))):
            tasks.append(asyncio.create_task(worker()))
            # One new worker per loop iteration: their first requests (and, with them,
            # new connections) spread out instead of arriving as one burst that blocks
            # the loop and comes back as one burst of responses.
            await asyncio.sleep(0)
        for _ in keys:
            item = await done.get()
            if isinstance(item, _Crash):
                raise item.error
            yield item
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def run_bounded(
    keys: Sequence[K],
    call: Callable[[K], Awaitable[V]],
    *,
    workers: int,
    return_exceptions: bool,
) -> dict[K, V | InkitError]:
    """Await ``call(key)`` for every key on at most *workers* tasks; map keys to results.

    With *return_exceptions*, an ``InkitError`` becomes that key's result; otherwise the
    first failure is raised, no further key is started, and the calls under way are
    cancelled and awaited.
    """
    results: dict[K, V | InkitError] = {}
    stream = as_completed_bounded(keys, call, workers=workers, stop_on_error=not return_exceptions)
    try:
        async for key, result in stream:
            if isinstance(result, InkitError) and not return_exceptions:
                raise result
            results[key] = result
    finally:
        await stream.aclose()
    return results
