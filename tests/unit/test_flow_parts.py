"""The parts flow control is made of (``inkit_async/_flow``), with plain numbers.

No sockets, no sleeps, no event loop and no clock: every part takes the time from its
caller, so each rule is checked at the exact moments it names.
"""

from __future__ import annotations

import math

import pytest

from inkit_async._flow import curve
from inkit_async._flow.breaker import Breaker, Gate
from inkit_async._flow.budget import RetryBudget
from inkit_async._flow.curve import MIN_RATE, Curve
from inkit_async._flow.estimate import (
    SEND_HISTORY,
    SendLog,
    Stretch,
    estimate_rate,
)
from inkit_async._flow.pacer import TOLERANCE, Pacer

# -- the curve ---------------------------------------------------------------------------


def test_an_estimate_below_the_sending_rate_sets_the_cut_at_90_percent_of_it():
    """The server refused a rate above what it is estimated to allow: cut below that."""
    assert curve.cut(5.0, sending=300.0, estimate=200.0, rate_limit=None) == Curve(
        rate=180.0, refused=200.0, blind=False, cut_at=5.0
    )


def test_an_estimate_above_the_sending_rate_says_nothing_of_the_limit():
    """A refusal while sending below the estimate (a burst): blind, unless a limit is known.

    The burst's sending rate is not the limit: taken for it, a fan-out was held at three
    quarters of the limit. With a limit known from the last cut, the curve climbs back to
    it (or to the new estimate, if lower) from below the sending rate.
    """
    burst = curve.cut(5.0, sending=150.0, estimate=900.0, rate_limit=None)
    assert (burst.rate, burst.refused, burst.blind) == (105.0, 150.0, True)
    known = curve.cut(0.0, sending=300.0, estimate=200.0, rate_limit=None)
    jitter = curve.cut(9.0, sending=150.0, estimate=900.0, rate_limit=None, previous=known)
    assert (jitter.rate, jitter.refused, jitter.blind) == (135.0, 200.0, False)
    lower = curve.cut(9.0, sending=150.0, estimate=170.0, rate_limit=None, previous=known)
    assert lower.refused == 170.0
    assert jitter.at(9.0 + jitter.k, None) == pytest.approx(200.0)


def test_a_blind_cut_sends_at_70_percent_and_doubles_every_second():
    """With no estimate: 70% of what was sent, then slow start's doubling."""
    cut = curve.cut(10.0, sending=100.0, estimate=None, rate_limit=None)
    assert (cut.rate, cut.refused, cut.blind) == (70.0, 100.0, True)
    assert cut.at(10.0, None) == pytest.approx(70.0)
    assert cut.at(11.0, None) == pytest.approx(140.0)
    assert cut.at(12.5, None) == pytest.approx(70.0 * 2**2.5)


def test_the_cubic_curve_is_back_at_the_refused_rate_after_3_s_then_climbs_slowly():
    """CUBIC: fast at first, flat at the refused rate at K = 3 s, then probing above it."""
    cut = curve.cut(0.0, sending=200.0, estimate=100.0, rate_limit=None)
    assert cut.at(0.0, None) == pytest.approx(90.0)
    assert cut.at(1.0, None) == pytest.approx(100.0 - 10.0 * 8 / 27)
    assert cut.at(3.0, None) == pytest.approx(100.0)
    assert cut.at(6.0, None) == pytest.approx(110.0)  # as far above as the cut was below
    rates = [cut.at(t / 10, None) for t in range(100)]
    assert rates == sorted(rates)


def test_a_curve_far_above_the_refused_rate_is_released_unless_a_rate_limit_holds_it():
    """32 times the refused rate: no limit is near, the rate is dropped (infinite)."""
    cut = curve.cut(0.0, sending=10.0, estimate=None, rate_limit=None)  # 7/s, doubling
    released_at = math.log2(32 * 10.0 / 7.0)  # seconds until 32 x refused
    assert math.isfinite(cut.at(released_at - 0.01, None))
    assert cut.at(released_at + 0.01, None) == math.inf
    assert cut.at(released_at + 0.01, 50.0) == 50.0


def test_a_curve_never_overflows_however_old_its_cut():
    """Past the horizon it stays put: a cut read from Redis may be very old."""
    cut = curve.cut(0.0, sending=10.0, estimate=None, rate_limit=None)
    assert cut.at(1e9, 25.0) == 25.0
    assert cut.at(1e9, None) == math.inf
    assert cut.at(-1e9, None) == MIN_RATE  # a clock that went backwards: the floor


def test_a_rate_limit_caps_the_cut_and_the_floor_holds_the_lowest_rate():
    """The user's limit is never exceeded; the rate never falls below 0.5/s."""
    assert curve.cut(0.0, sending=500.0, estimate=400.0, rate_limit=100.0).rate == 100.0
    low = curve.cut(0.0, sending=0.1, estimate=None, rate_limit=None)
    assert (low.rate, low.refused) == (MIN_RATE, MIN_RATE)
    assert low.at(0.0, None) == MIN_RATE


def test_a_flat_curve_is_the_rate_limit_and_a_restarted_one_climbs_again():
    """A known limit before any refusal; a restarted curve starts from its cut rate."""
    assert Curve(rate=50.0).at(1e6, 50.0) == 50.0
    cut = curve.cut(0.0, sending=200.0, estimate=100.0, rate_limit=None)
    again = cut.restarted(10.0)
    assert again.at(10.0, None) == pytest.approx(90.0)
    assert again.at(13.0, None) == pytest.approx(100.0)


def test_a_cut_that_cost_a_pause_cuts_less_and_climbs_back_over_longer():
    """Retry-After: 95% of the estimate, and 3 s + 10 x the pause to the refused rate."""
    cut = curve.cut(0.0, sending=300.0, estimate=200.0, rate_limit=None, pause=1.0)
    assert (cut.rate, cut.refused, cut.k) == (190.0, 200.0, 13.0)
    assert cut.at(13.0, None) == pytest.approx(200.0)
    assert cut.at(3.0, None) < 200.0  # still climbing where a free refusal is back
    assert curve.cut(0.0, 300.0, 200.0, None, pause=60.0).k == 30.0  # at most 30 s


def test_a_refusal_too_soon_for_an_estimate_cuts_near_the_last_estimated_limit():
    """After an estimated cut, no estimate of its own is no reason to cut blind."""
    estimated = curve.cut(0.0, sending=300.0, estimate=200.0, rate_limit=None)
    again = curve.cut(5.0, sending=200.0, estimate=None, rate_limit=None, previous=estimated)
    assert (again.rate, again.refused, again.blind) == (180.0, 200.0, False)
    paused = curve.cut(5.0, 200.0, None, None, pause=1.0, previous=estimated)
    assert paused.rate == 190.0
    blind = curve.cut(0.0, sending=300.0, estimate=None, rate_limit=None)
    assert curve.cut(5.0, 400.0, None, None, previous=blind).blind
    assert curve.cut(5.0, 400.0, None, None, previous=Curve(rate=50.0)).blind  # flat: no estimate


# -- the pacer ---------------------------------------------------------------------------


def test_the_pacer_spaces_requests_by_one_over_the_rate():
    """At 10/s one request per 100 ms; a tick early within the tolerance counts."""
    pacer = Pacer()
    assert pacer.take(0.0, 10.0)
    assert not pacer.take(0.05, 10.0)
    assert pacer.next_at == pytest.approx(0.1 - TOLERANCE)
    assert pacer.take(0.1 - TOLERANCE, 10.0)
    assert not pacer.take(0.15, 10.0)


def test_the_pacer_saves_no_credit_over_a_quiet_gap():
    """After a long gap one request goes at once, the next waits its full turn."""
    pacer = Pacer()
    assert pacer.take(0.0, 10.0)
    assert pacer.take(5.0, 10.0)
    assert not pacer.take(5.05, 10.0)


def test_the_pacer_holds_after_a_refusal_and_restarts_after_a_probe():
    """``hold``: the next waits one interval; ``restart``: the next goes at once."""
    pacer = Pacer()
    pacer.hold(2.0, 4.0)
    assert not pacer.take(2.2, 4.0)
    assert pacer.take(2.25, 4.0)
    pacer.restart(2.3)
    assert pacer.take(2.3, 4.0)


# -- the breaker -------------------------------------------------------------------------


def test_the_breaker_pauses_then_lets_exactly_one_probe_go():
    """Paused: wait until the end; then one probe; the others wait for its answer."""
    breaker = Breaker()
    assert breaker.admit(0.0) is Gate.GO
    breaker.pause(1.0, 2.0)
    assert breaker.held_since == 1.0
    assert breaker.admit(2.9) is Gate.WAIT
    assert breaker.due(2.9) == 3.0
    assert breaker.admit(3.0) is Gate.PROBE
    assert breaker.admit(3.0) is Gate.WAIT
    assert breaker.due(3.0) == math.inf  # the probe's answer lets them go
    assert not breaker.closed
    breaker.close()
    assert breaker.closed
    assert breaker.held_since is None
    assert breaker.admit(3.1) is Gate.GO
    assert breaker.due(3.1) is None


def test_a_returned_probe_lets_another_go_and_a_failed_one_pauses_again():
    """A cancelled probe is replaced; a refused probe starts the next pause."""
    breaker = Breaker()
    breaker.pause(0.0, 1.0)
    assert breaker.admit(1.0) is Gate.PROBE
    breaker.probe_returned()
    assert breaker.admit(1.0) is Gate.PROBE
    assert breaker.outage_pause(1.2, jitter=0.0) == 0.25
    assert breaker.held_since == 0.0  # held since the first pause: max_wait counts from it
    assert breaker.admit(1.3) is Gate.WAIT
    assert breaker.admit(1.45) is Gate.PROBE


def test_outage_pauses_double_to_4_s_less_jitter_and_reset_when_closed():
    """0.25, 0.5, 1, 2, 4, 4 s; jitter takes up to 10% off; a success starts again."""
    breaker = Breaker()
    lengths = [breaker.outage_pause(0.0, jitter=0.0) for _ in range(6)]
    assert lengths == [0.25, 0.5, 1.0, 2.0, 4.0, 4.0]
    assert breaker.outage_pause(0.0, jitter=1.0) == pytest.approx(3.6)
    breaker.close()
    assert breaker.outage_pause(0.0, jitter=0.5) == pytest.approx(0.25 * 0.95)


def test_a_pause_keeps_the_longer_end_and_extend_needs_a_pause_under_way():
    """A shorter pause never shortens one under way; ``extend`` starts none."""
    breaker = Breaker()
    breaker.extend(0.0, 5.0)
    assert breaker.closed
    breaker.pause(0.0, 5.0)
    breaker.pause(1.0, 1.0)
    assert breaker.paused_until == 5.0
    breaker.extend(4.0, 3.0)
    assert breaker.paused_until == 7.0


def test_the_breaker_counts_failures_in_a_row():
    """Failures add up across callers; an answer the server handled resets them."""
    breaker = Breaker()
    assert [breaker.fail() for _ in range(3)] == [1, 2, 3]
    breaker.succeed()
    assert breaker.fail() == 1


# -- the retry budget --------------------------------------------------------------------


def test_the_retry_budget_starts_full_spends_one_per_retry_and_refuses_when_empty():
    """*reserve* retries at first; then each is refused, and counted."""
    budget = RetryBudget(ratio=0.2, reserve=3)
    assert [budget.spend() for _ in range(4)] == [True, True, True, False]
    assert budget.refused == 1
    assert budget.tokens == 0.0


def test_the_retry_budget_earns_a_retry_per_five_successes_up_to_its_reserve():
    """0.2 per success: five successes pay for one retry; never more than the reserve."""
    budget = RetryBudget(ratio=0.2, reserve=2)
    budget.spend()
    budget.spend()
    for _ in range(4):
        budget.earn()
    assert not budget.spend()
    budget.earn()
    assert budget.spend()
    for _ in range(100):
        budget.earn()
    assert budget.tokens == 2.0


# -- the estimate ------------------------------------------------------------------------


def refused_send(rate: float, size: int, sending: float) -> tuple[list[tuple[int, float]], int]:
    """Sends at *sending*/s into a full bucket (*rate*/s, *size*); up to the first refusal."""
    level, at, sends = float(size), 0.0, []
    for number in range(1, 100_000):
        now = (number - 1) / sending
        level = min(size, level + (now - at) * rate)
        at = now
        sends.append((number, now))
        if level < 1.0:
            return sends, number
        level -= 1.0
    raise AssertionError("never refused")


@pytest.mark.parametrize("sending", [150.0, 200.0, 400.0, 1000.0])
def test_the_estimate_finds_the_servers_rate_from_the_send_times(sending):
    """Against 100/s with a bucket of 10, known: the estimate is within 10% of 100."""
    sends, refused = refused_send(100.0, 10, sending)
    estimate = estimate_rate(sends[-1], Stretch(1, 0.0, 10.0), sends[:-1], burst=10.0)
    assert estimate is not None
    assert 100.0 <= estimate <= 110.0, estimate
    assert refused == sends[-1][0]


def test_an_unknown_bucket_makes_the_estimate_an_upper_bound_well_above_the_rate():
    """Why the bucket is measured: taken as 0, the same sends read far more than 100/s."""
    sends, _ = refused_send(100.0, 10, 200.0)
    estimate = estimate_rate(sends[-1], Stretch(1, 0.0, 0.0), sends[:-1], burst=0.0)
    assert estimate is not None
    assert estimate > 180.0


def test_no_estimate_from_sends_all_at_once_or_below_the_lowest_rate():
    """Sends within 10 ms tell nothing; nor does a fit below 0.5/s."""
    at_once = [(n, 0.001 * n / 60) for n in range(1, 61)]
    assert estimate_rate(at_once[-1], Stretch(1, 0.0, 10.0), at_once[:-1], 10.0) is None
    slow = [(1, 0.0), (2, 100.0)]
    assert estimate_rate(slow[-1], Stretch(1, 0.0, 1.0), slow[:-1], 1.0) is None


def test_the_send_log_numbers_sends_and_forgets_the_oldest():
    """Numbers count every send; times are kept for the last ``SEND_HISTORY`` only."""
    log = SendLog()
    assert log.last is None
    for i in range(SEND_HISTORY + 10):
        assert log.record(i * 0.001) == i + 1
    assert log.time_of(1) is None
    assert log.time_of(11) == pytest.approx(0.010)
    assert log.time_of(SEND_HISTORY + 10) == log.last
    assert log.time_of(SEND_HISTORY + 11) is None


def test_the_sending_rate_reads_the_quarter_second_up_to_a_moment():
    """Sends after the moment do not count; at least one send per window is assumed."""
    log = SendLog()
    for i in range(100):
        log.record(i * 0.01)  # 100/s over 0..0.99 s
    assert log.sending_rate(0.99) == pytest.approx(26 / 0.25)
    assert log.sending_rate(0.5) == pytest.approx(26 / 0.25)
    assert log.sending_rate(-5.0) == pytest.approx(1 / 0.25)


def test_the_burst_ends_with_the_last_send_at_or_before_a_moment():
    """The first burst: the stretch's sends up to the refused one's send time."""
    log = SendLog()
    for i in range(5):
        log.record(1.0 + i * 0.01)  # before the stretch
    log.start_stretch(10.0, 0.0)
    for i in range(20):
        log.record(10.0 + i * 0.01)  # numbers 6 to 25
    assert log.sent_until(10.05) == 12  # 6 to 11 left by then
    assert log.sent_until(9.0) == 6  # none of the stretch's
    assert log.sent_until(99.0) == 26


def test_the_send_log_estimate_reads_only_the_current_stretch():
    """Sends before the stretch began (a pause, a cut) say nothing about this refusal."""
    log = SendLog()
    for i in range(50):
        log.record(i * 0.001)  # a burst long ago
    log.start_stretch(5.0, 10.0)
    sends, refused = refused_send(100.0, 10, 200.0)
    for _, at in sends:
        log.record(5.0 + at)
    estimate = log.estimate(50 + refused, burst=10.0)
    assert estimate is not None
    assert 100.0 <= estimate <= 110.0
    assert log.estimate(10_000, burst=10.0) is None  # not sent (yet)


def test_the_sending_rate_since_a_send_reads_its_busiest_quarter_second():
    """100 sends in 10 ms, then two a second later (a busy event loop read the answers late).

    Over the quarter second up to the last send the client sent 8/s; at its fastest since
    the first of the burst, 400/s: what the server refused.
    """
    log = SendLog()
    for i in range(100):
        log.record(i * 0.0001)
    log.record(1.0)
    log.record(1.001)
    assert log.sending_rate(1.001) == pytest.approx(2 / 0.25)
    assert log.sending_rate(1.001, since=0.005) == pytest.approx(100 / 0.25)
    assert log.sending_rate(1.001, since=0.5) == pytest.approx(2 / 0.25)
    assert log.sending_rate(0.0099, since=0.0) == pytest.approx(100 / 0.25)
    assert log.sending_rate(1.001, since=2.0) == pytest.approx(2 / 0.25)  # none since


def test_a_burst_begins_after_a_gap_of_a_tenth_of_a_second_or_with_a_stretch():
    """Each send's burst is named by its first request; older sends are forgotten."""
    log = SendLog()
    for at in (0.0, 0.05, 0.2, 0.29, 0.39):
        log.record(at)  # 1 and 2 together; 3 after a 0.15 s gap; 4 close; 5 after 0.1 s
    assert [log.burst_of(seq) for seq in range(1, 6)] == [1, 1, 3, 3, 5]
    log.start_stretch(0.4, 0.0)
    log.record(0.4)  # no gap, but a new stretch
    assert log.burst_of(6) == 6
    assert log.burst_of(7) is None  # not sent yet
    for i in range(SEND_HISTORY):
        log.record(0.6 + i * 0.001)
    assert log.burst_of(6) is None  # forgotten
    assert log.burst_of(7) == 7
