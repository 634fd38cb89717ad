"""Rate limits: a fan-out against an API that answers 429, watched through events and state."""

import asyncio

from inkit_async import ClientEvent, InkitError, PauseEvent, RateEvent, Throttle
from inkit_async.testing import FakeInkit


def show(event: ClientEvent) -> None:
    # on_event gets every event; this prints the throttle's (RetryEvents are left out).
    if isinstance(event, RateEvent):
        print(f"  rate cut to {event.rate:.0f}/s after a {event.status_code}")
    elif isinstance(event, PauseEvent):
        print(f"  paused {event.seconds:.2f} s: {event.reason}")


async def main() -> None:
    # An in-process fake Inkit (no network) that allows 200 requests per second per
    # token, in bursts of up to 20, and answers 429 with Retry-After: 0.5 beyond that.
    fake = FakeInkit()
    ids = [fake.add_batch() for _ in range(200)]
    fake.limit_rate(200, burst=20, retry_after=0.5)

    # The defaults: no sending rate until the first 429; then a cut, and a search for the limit.
    print("defaults:")
    async with fake.client(on_event=show) as client:
        results = await client.batch.get_many(ids, return_exceptions=True)
        failed = sum(isinstance(result, InkitError) for result in results)
        if client.throttle is not None:  # None only with throttle=False
            state = client.throttle.state
            print(f"  {failed} failed; now at {state.rate or 0:.0f}/s after {state.cuts} cuts")
    print(f"  {len(fake.requests)} requests for {len(ids)} lookups, {fake.refused} refused")

    # A limit you know: the client never sends faster, across all its callers.
    fake.requests.clear()
    fake.refused = 0
    print("rate_limit=180:")
    async with fake.client(on_event=show, throttle=Throttle(rate_limit=180)) as client:
        await client.batch.get_many(ids[:90])
    print(f"  {len(fake.requests)} requests for 90 lookups, {fake.refused} refused")


asyncio.run(main())
