"""``inkit-async demo``: the SDK end to end in a few seconds, with no account and no network.

By default it starts an embedded ``FakeInkit`` in process, creates a few hundred
batches to look up and one to watch, fans out thousands of lookups (with a few injected
503s that the client retries), waits for the watched batch with a live progress line,
and prints a summary whose counts add up: every batch it created is counted once, and
the requests sent are the lookups' first attempts plus the retries, each counted from
what the fake received and from the client's ``RetryEvent``s. With ``--base-url`` it
runs the same lookups and wait against a real server instead, reading the batches it
can list there (it never creates any).
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from typing import TYPE_CHECKING, Any

from ._cli import EXIT_API_ERROR, EXIT_OK, UsageError, ticking
from ._cli_output import Console, ProgressBoard
from ._client import AsyncInkit
from ._constants import ENV_API_TOKEN
from ._events import RetryEvent
from ._exceptions import InkitError
from ._models import RenderSpec
from ._retry import Backoff

if TYPE_CHECKING:
    import argparse

    from ._models import Batch
    from .testing import FakeInkit

__all__ = ["run_demo"]

#: Destinations the demo's batches deliver to, a few of each.
_DESTINATIONS = ("inkit_storage", "docusign", "salesforce", "magic_link")
#: The batch the demo waits for renders this many documents.
_WATCHED_DOCUMENTS = 20
_INJECTED_FAULTS = 3


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


class _Meter:
    """A fan-out progress indicator: a live bar on a terminal, a few plain lines otherwise."""

    def __init__(self, total: int) -> None:
        self._total = total
        self._live = sys.stdout.isatty()
        self._next_plain = 0.0

    def show(self, done: int) -> None:
        if self._live:
            filled = 24 * done // self._total
            bar = "#" * filled + "-" * (24 - filled)
            sys.stdout.write(f"\rlookups  [{bar}] {done}/{self._total}\x1b[K")
            if done == self._total:
                sys.stdout.write("\n")
        elif done >= self._next_plain or done == self._total:
            _say(f"lookups: {done}/{self._total}")
            self._next_plain = done + self._total / 4
        sys.stdout.flush()


async def _seed_fake(fake: FakeInkit, client: AsyncInkit, count: int) -> tuple[list[str], str]:
    """Create *count* batches through the API (and one to watch); return their ids."""
    pick = random.Random(7)  # noqa: S311 - demo data

    def renders(documents: int, destination: str | None = None) -> list[RenderSpec]:
        return [
            RenderSpec(
                merge_parameters={"customer": f"Customer {n}", "amount": pick.randint(10, 999)},
                destinations={destination or pick.choice(_DESTINATIONS): {}},
            )
            for n in range(documents)
        ]

    created = await asyncio.gather(
        *(
            client.batch.create(
                template_id="tmpl_demo",
                name=f"Invoices {n:03d}",
                renders=renders(pick.randint(1, 6)),
            )
            for n in range(count)
        )
    )
    ids = [batch.id for batch in created]
    for batch_id in pick.sample(ids, k=max(1, count // 20)):
        fake.fail(batch_id, 1)  # some documents fail, as in life
    watched = await client.batch.create(
        template_id="tmpl_demo",
        name="Year-end statements",
        renders=renders(_WATCHED_DOCUMENTS, "inkit_storage"),
    )
    return ids, watched.id


async def _fan_out(client: AsyncInkit, ids: list[str], lookups: int) -> tuple[list[Batch], int]:
    """Look up *lookups* batches, cycling through *ids*, in rounds of ``get_many``."""
    meter = _Meter(lookups)
    latest: dict[str, Batch] = {}
    errors = 0
    done = 0
    while done < lookups:
        round_ids = ids[: lookups - done]
        results = await client.batch.get_many(round_ids, return_exceptions=True)
        for result in results:
            if isinstance(result, InkitError):
                errors += 1
            else:
                latest[result.id] = result
        done += len(round_ids)
        meter.show(done)
    return list(latest.values()), errors


async def _watch(client: AsyncInkit, batch_id: str, timeout: float) -> Batch | None:
    console = Console()
    board = ProgressBoard(console, sys.stdout, [batch_id])
    last = None
    try:
        async with ticking(board), asyncio.timeout(timeout):
            async for snapshot in client.batch.watch(batch_id, poll_interval=0.05):
                last = snapshot
                board.update(snapshot)
    except TimeoutError:
        board.finish()
        _say(f"{batch_id} did not finish within {timeout:g} s")
    board.finish()
    return last


class _Retries:
    """Counts the client's retries (an ``on_event`` callback), to explain the requests sent."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, event: object) -> None:
        if isinstance(event, RetryEvent):
            self.count += 1


def _summary(
    batches: list[Batch], lookups: int, errors: int, elapsed: float, *, sent: int, retries: int
) -> None:
    """The figures, each of them a count of the same things as the lines above it."""
    finished = sum(batch.is_finished for batch in batches)
    failed = sum(batch.progress.failed > 0 for batch in batches)
    _say("summary")
    _say(f"  lookups: {lookups}")
    _say(f"  errors: {errors}")
    _say(f"  requests sent: {sent} ({sent - retries} first attempts, {retries} retries)")
    _say(f"  lookups/s: {lookups / elapsed:,.0f}")
    _say(f"  batches finished: {finished} of {len(batches)}")
    _say(f"  batches with failed documents: {failed}")


async def _embedded(args: argparse.Namespace) -> int:
    from .testing import FakeInkit  # noqa: PLC0415 - the fake is for the demo and tests

    fake = FakeInkit(seed=2024)
    retries = _Retries()
    started = time.perf_counter()
    backoff = Backoff(initial=0.01, maximum=0.05)
    async with fake.client(backoff=backoff, on_event=retries) as client:
        _say("inkit-async demo: an embedded fake Inkit, in process (no token, no network)")
        ids, watched = await _seed_fake(fake, client, args.batches)
        took = time.perf_counter() - started
        _say(f"created {len(ids) + 1} batches in {took:.2f} s: {len(ids)} to look up, 1 to watch")
        fake.fail_next(_INJECTED_FAULTS, 503)
        _say(f"the next {_INJECTED_FAULTS} requests will get a 503, which the client retries")
        before = len(fake.requests)
        fan_out_started = time.perf_counter()
        batches, errors = await _fan_out(client, ids, args.lookups)
        elapsed = time.perf_counter() - fan_out_started
        sent = len(fake.requests) - before
        fan_out_retries = retries.count
        _say(f"waiting for {watched} ({_WATCHED_DOCUMENTS} documents)")
        last = await _watch(client, watched, timeout=30)
    if last is not None:
        batches.append(last)  # every batch the demo made is counted, the watched one too
    _summary(batches, args.lookups, errors, elapsed, sent=sent, retries=fan_out_retries)
    return EXIT_OK if errors == 0 else EXIT_API_ERROR


async def _remote(args: argparse.Namespace, options: dict[str, Any], token: str | None) -> int:
    if token is None:
        raise UsageError(f"demo --base-url needs a token: set {ENV_API_TOKEN} or pass --token-file")
    retries = _Retries()
    report = options.get("on_event")

    def on_event(event: object) -> None:
        retries(event)
        if report is not None:
            report(event)

    options = {**options, "on_event": on_event}
    async with AsyncInkit(token, **options) as client:
        _say(f"inkit-async demo against {client.base_url}")
        ids: list[str] = []
        async for batch in client.batch.list(page_size=min(args.batches, 1000)):
            ids.append(batch.id)
            if len(ids) >= args.batches:
                break
        if not ids:
            _say("no batches to look up on this server")
            return EXIT_OK
        started = time.perf_counter()
        before = retries.count
        batches, errors = await _fan_out(client, ids, args.lookups)
        elapsed = time.perf_counter() - started
        fan_out_retries = retries.count - before
        unfinished = next((b.id for b in batches if not b.is_finished), ids[0])
        _say(f"waiting for {unfinished}")
        await _watch(client, unfinished, timeout=30)
    # Each lookup of a round is a distinct id, and nothing is cached: one first attempt each.
    sent = args.lookups + fan_out_retries
    _summary(batches, args.lookups, errors, elapsed, sent=sent, retries=fan_out_retries)
    return EXIT_OK if errors == 0 else EXIT_API_ERROR


async def run_demo(args: argparse.Namespace, options: dict[str, Any], token: str | None) -> int:
    """Run the demo; embedded unless ``--base-url`` names a real server."""
    if args.base_url is None:
        return await _embedded(args)
    return await _remote(args, options, token)
