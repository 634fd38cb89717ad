"""Flow control against a simulated rate-limited server, on a simulated clock.

Each test runs the production ``Throttle`` and retry policy (``decide``) through
``flow_sim``: callers, a token-bucket server and their latency, in simulated time. The
figures are exact and the same on every machine, so the rate-limit targets of
``docs/rate-limits.md`` are checked here as numbers; the benchmarks (``nox -s bench``)
check them again over sockets. 200 requests per second with a bucket of 20 is the
benchmark's nginx ``limit_req``; 100 callers at once is the client's default
``max_concurrency``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.support.flow_sim import Bucket, Clock, Result, regulator, run

if TYPE_CHECKING:
    from inkit_async._flow.regulator import Regulator

RATE = 200.0
BURST = 20


#: How the callers start: all at once (a gather); one per 0.8 ms (``get_many``, one worker
#: per turn of the event loop); after a lone warm-up lookup, with the event loop busy for
#: 0.9 s once the first 100 have left (a gather of 20,000 making its tasks).
STARTS = {
    "at once": {},
    "one per loop turn": {"start_gap": 0.0008},
    "busy loop after a warm-up": {"warm_up": 0.3, "busy": 0.9},
}


def simulate(
    lookups: int,
    *,
    retry_after: float | None,
    latency: float = 0.002,
    burst: int = BURST,
    start: str = "at once",
) -> tuple[Result, Regulator]:
    """*lookups* through a default throttle against 200/s; the result and the throttle."""
    clock = Clock()
    throttle = regulator(clock)
    result = run(
        throttle,
        clock,
        Bucket(RATE, burst),
        lookups=lookups,
        retry_after=retry_after,
        latency=latency,
        **STARTS[start],
    )
    return result, throttle


@pytest.mark.parametrize(
    ("lookups", "start"),
    [
        (3000, "at once"),
        (20_000, "at once"),
        (3000, "one per loop turn"),
        (3000, "busy loop after a warm-up"),
    ],
)
def test_without_retry_after_the_limit_is_used_in_full(lookups, start):
    """No Retry-After: done at the server's rate, at most 15% more requests, none failed.

    Whichever way the callers start: a warm-up and a busy loop cost their 0.3 and 0.9 s
    once (the client sends nothing meanwhile). Against a busy loop, before, the cut read
    the trickle that left as the loop came free (80/s) and doubled up from 56/s: 1.44 x
    ideal for 3,000 lookups.
    """
    result, _ = simulate(lookups, retry_after=None, start=start)
    assert result.failed == 0
    assert result.wall <= 1.02 * lookups / RATE + idle(start)
    assert result.requests <= 1.15 * lookups


def idle(start: str) -> float:
    """The seconds a way of starting keeps the client from sending: its warm-up and busy loop."""
    return STARTS[start].get("warm_up", 0.0) + STARTS[start].get("busy", 0.0)


@pytest.mark.parametrize("start", ["at once", "busy loop after a warm-up"])
@pytest.mark.parametrize("lookups", [3000, 20_000])
def test_with_retry_after_on_every_429_the_run_takes_at_most_115_percent_of_ideal(lookups, start):
    """Retry-After: 1 pauses every caller per refusal: two refusals at the start, then none.

    A refusal that costs a pause makes the curve stay near the refused rate for 13 s
    instead of 3 and cut to 95% instead of 90%: before, it probed above the limit every
    7 s and each probe paused the client for a second (1.26 x ideal for 3,000 lookups,
    1.18 x for 20,000). After a warm-up, the fan-out's first 429 was fitted from the
    warm-up on (the bucket unmeasured, the fan-out 0.3 s into the stretch): the client
    sent at 75/s for good, 2.7 x ideal for 3,000 lookups; for 20,000, with the bucket
    unknown, bunched sends read as the rate and each probe above it paused: 1.40 x.
    """
    result, throttle = simulate(lookups, retry_after=1.0, start=start)
    assert result.failed == 0
    assert result.wall <= 1.15 * lookups / RATE + idle(start)
    assert throttle.snapshot().pauses <= 2 + lookups // 4000


@pytest.mark.parametrize(
    ("retry_after", "start"),
    [(None, "at once"), (1.0, "at once"), (None, "busy loop after a warm-up")],
)
@pytest.mark.parametrize("latency", [0.002, 0.15])
def test_a_fan_out_reaches_the_limit_within_2_s_of_its_first_429(retry_after, start, latency):
    """The first whole second from 2 s after the first refusal lets 90% of the limit through.

    And so does the rest of the run on average: without Retry-After every second, with it
    all but the second of each rare pause. The first refusal is the server's, not when
    the client read it: a busy loop reads it 0.9 s late. (Before, the cut then read the
    trickle leaving as the loop came free and doubled up from 56/s: 10.7 s.)
    """
    result, _ = simulate(20_000, retry_after=retry_after, latency=latency, start=start)
    assert result.first_refusal is not None
    start = int(result.first_refusal + 2.0) + 1
    busy = result.admitted_per_second[start:-1]  # the last second is partly idle
    assert busy[0] >= 0.9 * RATE, busy[:5]
    assert sum(busy) >= 0.9 * RATE * len(busy)
    if retry_after is None:
        assert min(busy) >= 0.9 * RATE


@pytest.mark.parametrize("latency", [0.05, 0.15])
def test_no_lookup_fails_for_429s_its_throttle_had_answered_already(latency):
    """At a real API's latency, 100 requests are on their way when the first 429 comes.

    Those were sent at the old rate: the cut answered them, so their retries do not count
    against ``max_retries``. Counting them failed 1 and 2 of 20,000 lookups at these
    latencies. Against a bucket of one, where requests still on their way at the old rate
    take what the bucket refills after a cut, a lookup may still, rarely, be refused three
    times after cuts: at most one of 20,000.
    """
    result, _ = simulate(20_000, retry_after=None, latency=latency)
    assert result.failed == 0, result
    one, _ = simulate(20_000, retry_after=None, latency=latency, burst=1)
    assert one.failed <= 1, one


def test_a_server_whose_bucket_holds_one_request_is_learned_not_fought():
    """Bucket of 1, Retry-After: 1: a few pauses, no failure.

    Before, the request right after each probe was refused (the probe had used the only
    token, and the curve had doubled during the pause), each refusal cut blind and paused
    again: 150 x ideal and 756 of 3,000 lookups failed.
    """
    result, throttle = simulate(3000, retry_after=1.0, burst=1)
    assert result.failed == 0
    assert result.wall <= 1.6 * 3000 / RATE
    assert throttle.snapshot().pauses <= 6
