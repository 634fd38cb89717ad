"""iter_many left open when the loop ends: closed once, quietly, by shutdown_asyncgens."""

from __future__ import annotations

import asyncio
import logging

from inkit_async.testing import FakeInkit


def test_an_iter_many_left_open_is_closed_quietly_when_the_loop_ends(caplog):
    """No 'aclose(): asynchronous generator is already running' from asyncio.run's shutdown."""
    fake = FakeInkit(latency=0.05)
    ids = [fake.add_batch() for _ in range(20)]
    kept = []

    async def main() -> None:
        async with fake.client(max_concurrency=5) as client:
            results = client.batch.iter_many(ids)
            kept.append(results)  # still referenced, still open when the loop ends
            first_id, first = await anext(results)
            assert first.id == first_id

    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        asyncio.run(main())
    errors = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert errors == []
