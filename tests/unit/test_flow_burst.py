"""The throttle's measure of the server's bucket, on a fake clock with plain numbers.

No sockets, no sleeps, no event loop: the throttle reads the injected clock, and each
test plays a token-bucket server against it request by request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

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
