"""A pool of task worker processes checking batches, one API token, one Redis."""

import asyncio
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

from inkit_async import AsyncInkit, InkitError
from inkit_async.redis import RedisThrottle

REDIS_URL = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
WORKERS = 4


async def check(batch_ids: list[str]) -> list[str]:
    # One client per process for the whole job; every process on the same namespace.
    async with (
        RedisThrottle.from_url(REDIS_URL, namespace="nightly-report") as throttle,
        AsyncInkit(throttle=throttle) as client,
    ):
        results = await client.batch.get_many(batch_ids, return_exceptions=True)
        alone = throttle.fleet.outages > 0  # Redis could not be reached
    lines: list[str] = []
    for batch_id, result in zip(batch_ids, results, strict=True):
        if isinstance(result, InkitError):
            lines.append(f"{batch_id}: {type(result).__name__}")
        else:
            lines.append(f"{batch_id}: {result.status}")
    where = "on its own: no Redis" if alone else "in the fleet"
    return [f"worker {os.getpid()}, {where}", *lines]


def job(batch_ids: list[str]) -> list[str]:
    return asyncio.run(check(batch_ids))


def main() -> None:
    batch_ids = [
        "rb_6WtDgF7RGqdS5Uzea9neZJ",
        "rb_2KmPqR8sTuVwXyZaBcDeFg",
        "rb_9HjKlMnOpQrStUvWxYzAbC",
        "rb_missing",
    ]
    shares = [batch_ids[index::WORKERS] for index in range(WORKERS)]
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=WORKERS, mp_context=spawn) as pool:
        for lines in pool.map(job, shares):
            print("\n  ".join(lines))


if __name__ == "__main__":
    main()
