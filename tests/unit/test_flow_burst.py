"""The throttle's measure of the server's bucket, on a fake clock with plain numbers.

No sockets, no sleeps, no event loop: the throttle reads the injected clock, and each
test plays a token-bucket server against it request by request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from inkit_async._flow.estimate import SEND_HISTORY
from inkit_async._throttle import Permit, Signal
from tests.support.flow_sim import Bucket, Clock, regulator

if TYPE_CHECKING:
    from inkit_async._flow.regulator import Regulator


def send_until_refused(throttle: Regulator, clock: Clock, server: Bucket, until: float) -> Permit:
    """Send whenever the throttle lets a request go, answered at once; stop at a refusal."""
    while clock.now < until:
        permit = throttle.take(clock.now)
        if permit is None:
            clock.now = max(clock.now + 1e-4, throttle.next_paced())
            continue
        if not server.admit(clock.now):
            return permit
        throttle.release(permit, Signal.OK)
    raise AssertionError("the server never refused")


@pytest.mark.parametrize("answered_at", [0.02, 0.103, 0.3])
@pytest.mark.parametrize("before_refusal", [10, 5, 0])
def test_the_cut_after_a_pause_stays_below_the_servers_rate(answered_at, before_refusal):
    """A burst from a quiet start measures the bucket, however late its answers come.

    60 lookups leave over 50 ms (a busy event loop) against 100/s with a bucket of 10;
    their answers are read *answered_at* seconds after the start (a slow server, a busy
    loop), *before_refusal* of the 14 successes before the first 429 with Retry-After: 1
    and the others after it. After the pause, the client sends at its blind rate until
    refused again: that cut must estimate the server's rate from the bucket it measured,
    not from a bucket of 0, which read 200/s here and cost a third pause.
    """
    clock, server = Clock(), Bucket(rate=100, size=10)
    throttle = regulator(clock)
    sent = []
    for i in range(60):
        clock.now = i * 0.05 / 60
        permit = throttle.take(clock.now)
        assert permit is not None  # nothing holds a healthy client back
        sent.append((permit, server.admit(clock.now)))
    ok = [permit for permit, admitted in sent if admitted]
    refused = [permit for permit, admitted in sent if not admitted]
    assert len(ok) == 14  # the bucket, and what it refilled over the 50 ms
    clock.now = answered_at
    for permit in ok[:before_refusal]:
        throttle.release(permit, Signal.OK)
    first = throttle.release(refused[0], Signal.THROTTLED, 1.0)
    assert first is not None
    assert first.pause == 1.0
    for permit in ok[before_refusal:]:
        throttle.release(permit, Signal.OK)
    for permit in refused[1:]:
        throttle.release(permit, Signal.THROTTLED, 1.0)  # sent before the cut: ignored

    clock.now = answered_at + 1.0  # the pause ends: the probe, then paced sends
    refused_again = send_until_refused(throttle, clock, server, until=answered_at + 3.0)
    second = throttle.release(refused_again, Signal.THROTTLED, 1.0)
    assert second is not None
    assert second.rate is not None
    assert 50 <= second.rate <= 100, second.rate


def fan_out(
    throttle: Regulator, clock: Clock, server: Bucket, *, start: float, count: int, gap: float
) -> tuple[list[Permit], list[Permit]]:
    """*count* lookups leave from *start*, one per *gap* seconds: those let through, refused."""
    ok, refused = [], []
    for i in range(count):
        clock.now = start + i * gap
        permit = throttle.take(clock.now)
        assert permit is not None  # nothing holds a healthy client back
        (ok if server.admit(clock.now) else refused).append(permit)
    return ok, refused


def test_a_fan_out_after_a_lone_first_request_measures_the_bucket():
    """A warm-up at 0, then 60 lookups from 0.3 s over 6 ms against 100/s, bucket 10.

    The fan-out, not the stretch that began with the warm-up, is the burst that tells
    the bucket, and its refusal says nothing of the rate: the fan-out left 0.3 s after
    the stretch began, so the bucket went unmeasured (0), and the first 429 was fitted
    from the warm-up on: 12 sends over 0.3 s, 40/s, cut to 38/s, and after the pause
    the client sent below the server's rate for good (it never refused again).
    """
    clock, server = Clock(), Bucket(rate=100, size=10)
    throttle = regulator(clock)
    warm_up = throttle.take(0.0)
    assert warm_up is not None
    assert server.admit(0.0)
    throttle.release(warm_up, Signal.OK)
    ok, refused = fan_out(throttle, clock, server, start=0.3, count=60, gap=0.0001)
    clock.now = 0.33
    for permit in ok:
        throttle.release(permit, Signal.OK)
    first = throttle.release(refused[0], Signal.THROTTLED, 1.0)
    assert first is not None
    assert first.pause == 1.0
    assert first.rate == pytest.approx(0.7 * 60 / 0.25)  # blind, from the fan-out's rate
    for permit in refused[1:]:
        throttle.release(permit, Signal.THROTTLED, 1.0)

    clock.now = 1.33  # the pause ends: the probe, then paced sends
    refused_again = send_until_refused(throttle, clock, server, until=4.0)
    second = throttle.release(refused_again, Signal.THROTTLED, 1.0)
    assert second is not None
    assert second.rate is not None
    assert 90 <= second.rate <= 100, second.rate


def test_a_burst_read_late_by_a_busy_loop_is_cut_from_its_own_rate():
    """100 lookups leave in 10 ms at 0; the event loop reads their answers only at 0.9 s.

    By then the first two callers let through have sent their next lookups: over the
    quarter second up to the last send the client sent 8/s, and a blind cut from that
    (5.6/s, doubling) took 5 s to find the server's 200/s again. What the server refused
    is the burst: 400/s over a quarter second, so the cut is to 70% of that, 280/s.
    """
    clock, server = Clock(), Bucket(rate=200, size=20)
    throttle = regulator(clock)
    ok, refused = fan_out(throttle, clock, server, start=0.0, count=100, gap=0.0001)
    clock.now = 0.9
    for permit in ok[:2]:
        throttle.release(permit, Signal.OK)
        assert throttle.take(clock.now) is not None  # that caller's next lookup
    change = throttle.release(refused[0], Signal.THROTTLED)
    assert change is not None
    assert change.rate == pytest.approx(0.7 * 100 / 0.25)


def test_a_refusal_too_soon_after_a_cut_for_the_server_to_see_it_counts_as_before_it():
    """A request that leaves within 10 ms of a cut meets the bucket those before emptied.

    At 0.9 s a busy event loop reads a burst's answers: two callers let through send
    their next lookups at once, then the 429 cuts blind to 280/s. The refused call's
    retry is the first paced request, 3.6 ms later, and the two took what the bucket
    had: refused. That refusal says nothing the cut did not (nor allows an estimate):
    it neither cuts again nor counts against the call's ``max_retries``. Before, it cut
    blind again, its retry was again the first paced one, and the call failed after a
    third cut. A request sent 10 ms after the cut is the cut's own: its refusal cuts.
    """
    clock, server = Clock(), Bucket(rate=200, size=20)
    throttle = regulator(clock)
    ok, refused = fan_out(throttle, clock, server, start=0.0, count=100, gap=0.0001)
    clock.now = 0.9
    for permit in ok[:2]:
        throttle.release(permit, Signal.OK)
        assert throttle.take(clock.now) is not None
    assert throttle.release(refused[0], Signal.THROTTLED) is not None
    assert throttle.take(0.9) is None  # paced: the first waits its turn
    retry = throttle.take(0.9 + 1 / 280)
    assert retry is not None
    assert not throttle.is_current(retry)
    clock.now = 0.91
    assert throttle.release(retry, Signal.THROTTLED) is None
    later = throttle.take(0.9101)
    assert later is not None
    assert throttle.is_current(later)
    clock.now = 0.92
    change = throttle.release(later, Signal.THROTTLED)
    assert change is not None
    assert change.rate is not None
    assert change.rate < 280


def test_only_the_refused_requests_own_burst_measures_the_bucket():
    """Five lone lookups 0.2 s apart, each answered, then 60 at once: a bucket of 10.

    Each lone lookup is a burst of its own, and the gap after it refilled what it took:
    the fan-out's 10 alone are the bucket. (Before, the fan-out came 1 s into the
    stretch the first lone lookup began: the bucket went unmeasured.)
    """
    clock, server = Clock(), Bucket(rate=100, size=10)
    throttle = regulator(clock)
    for i in range(5):
        clock.now = i * 0.2
        lone = throttle.take(clock.now)
        assert lone is not None
        assert server.admit(clock.now)
        throttle.release(lone, Signal.OK)
    ok, refused = fan_out(throttle, clock, server, start=1.0, count=60, gap=0.0001)
    assert len(ok) == 10
    clock.now = 1.01
    for permit in ok:
        throttle.release(permit, Signal.OK)
    first = throttle.release(refused[0], Signal.THROTTLED, 1.0)
    assert first is not None
    # Blind (the bucket, not the rate): 70% of the 61 sent over the quarter second.
    assert first.rate == pytest.approx(0.7 * 61 / 0.25)
    for permit in refused[1:]:
        throttle.release(permit, Signal.THROTTLED, 1.0)

    clock.now = 2.01
    refused_again = send_until_refused(throttle, clock, server, until=5.0)
    second = throttle.release(refused_again, Signal.THROTTLED, 1.0)
    assert second is not None
    assert second.rate is not None
    assert 90 <= second.rate <= 100, second.rate


def test_a_burst_too_long_to_remember_is_not_measured():
    """Answers to sends the log no longer holds count toward no burst, nor measure one.

    4,097 lookups leave at once; the first one's answer comes back last but one, then
    the last is refused: the burst's first send is forgotten, so the refusal cannot say
    how soon after it it left. The cut is blind, from the sends the log still holds.
    """
    clock = Clock()
    throttle = regulator(clock)
    permits = [throttle.take(0.0) for _ in range(SEND_HISTORY + 1)]
    assert all(permit is not None for permit in permits)
    first, last = permits[0], permits[-1]
    assert first is not None
    assert last is not None
    throttle.release(first, Signal.OK)
    change = throttle.release(last, Signal.THROTTLED)
    assert change is not None
    assert change.rate == pytest.approx(0.7 * SEND_HISTORY / 0.25)
