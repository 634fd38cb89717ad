"""The server's rate limit, fitted to the client's own send times.

The server is taken to be a token bucket (rate L, size B): it refused request *k*, sent
at s_k, because since some earlier moment t when its bucket held b it had been sent more
than b + L * (s_k - t) requests. So L is below ``(sends in [t, s_k] - b) / (s_k - t)`` for
some t, and just below it for the tightest t, since nothing was refused before. t is the
start of the stretch (b as it was then) or any send since (b = B: full at best).
"""

from __future__ import annotations

import collections
import itertools
import math
from typing import TYPE_CHECKING, Final

import attrs

from .curve import MIN_RATE

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

__all__ = ["MIN_SPAN", "SendLog", "Stretch", "estimate_rate"]

#: Shortest stretch (seconds) of sends trusted to estimate the server's limit.
MIN_SPAN: Final = 0.01
#: Window (seconds) over which the sending rate is measured when no rate is set yet.
SEND_WINDOW: Final = 0.25
#: Send times kept for the estimate (the most recent ones).
SEND_HISTORY: Final = 4096
#: A first refusal of a request sent within this many seconds of a quiet start measures
#: the server's bucket; a gap this long between sends starts a new burst.
BURST_SPAN: Final = 0.1


@attrs.frozen
class Stretch:
    """Where the sends an estimate reads begin: after a cut, a pause or a quiet gap."""

    first: int
    """The number of the stretch's first request."""
    start: float
    """When the stretch began."""
    bucket: float
    """What the server's bucket held then (0 after a refusal)."""


def estimate_rate(
    refused: tuple[int, float],
    stretch: Stretch | None,
    earlier: Iterable[tuple[int, float]],
    burst: float,
) -> float | None:
    """The fastest refill rate that could still have refused a request, or ``None``.

    Args:
        refused: The refused request's number and when it left.
        stretch: Where the stretch began, if that is still known.
        earlier: The number and send time of the stretch's requests sent before the
            refused one, oldest first.
        burst: The size of the server's bucket, as measured (0: unknown).
    """
    seq, refused_at = refused
    best = -math.inf
    if stretch is not None:
        elapsed = refused_at - stretch.start
        if elapsed >= MIN_SPAN:
            best = (seq - stretch.first + 1 - stretch.bucket) / elapsed
    for number, sent_at in earlier:
        elapsed = refused_at - sent_at
        if elapsed < MIN_SPAN:
            break
        best = max(best, (seq - number - burst) / elapsed)
    return best if best >= MIN_RATE else None


class SendLog:
    """The client's recent send times, numbered, and the stretch they belong to."""

    __slots__ = ("_bursts", "_times", "sent", "stretch")

    def __init__(self) -> None:
        """Nothing sent yet."""
        self._times: collections.deque[float] = collections.deque(maxlen=SEND_HISTORY)
        self.sent = 0
        """Requests sent, ever: the number of the last one."""
        self.stretch = Stretch(1, 0.0, 0.0)
        """The stretch the next estimate reads."""
        # Per send, the number of the first request of its burst: the first sent after
        # a gap of BURST_SPAN or more, or the stretch's first if later. A program's first
        # request often goes alone (a warm-up, a check) and its fan-out a little later:
        # the fan-out is the burst that tells the server's bucket.
        self._bursts: collections.deque[int] = collections.deque(maxlen=SEND_HISTORY)

    def record(self, now: float) -> int:
        """Note a request leaving at *now*; return its number."""
        last = self.last
        if last is None or now - last >= BURST_SPAN or self.stretch.first > self.sent:
            self._bursts.append(self.sent + 1)
        else:
            self._bursts.append(self._bursts[-1])
        self._times.append(now)
        self.sent += 1
        return self.sent

    @property
    def last(self) -> float | None:
        """When the last request left, or ``None`` before the first."""
        return self._times[-1] if self._times else None

    def start_stretch(self, now: float, bucket: float) -> None:
        """Begin a new stretch at *now*, the server's bucket holding *bucket*."""
        self.stretch = Stretch(self.sent + 1, now, bucket)

    def time_of(self, seq: int) -> float | None:
        """When request *seq* left, if it is still in the history."""
        index = seq - (self.sent - len(self._times) + 1)
        return self._times[index] if 0 <= index < len(self._times) else None

    def burst_of(self, seq: int) -> int | None:
        """The number of the first request of request *seq*'s burst, if still kept."""
        index = seq - (self.sent - len(self._times) + 1)
        return self._bursts[index] if 0 <= index < len(self._bursts) else None

    def sending_rate(self, at: float, since: float | None = None) -> float:
        """Requests per second sent over the window that ends at *at* (at least one).

        With *since*, the busiest such window that ends between *since* and *at*: what
        the client sent at its fastest since then. A refusal's answer may come long
        after the burst it ends (a busy event loop read it late), when only a trickle
        still leaves: the window up to the last send read 8/s of a burst of 400/s.
        """
        start = at if since is None else min(since, at)
        times: list[float] = []  # the send times that may count, newest first
        for sent_at in reversed(self._times):
            if sent_at > at:
                continue
            if start - sent_at > SEND_WINDOW:
                break
            times.append(sent_at)
        if start == at:
            return max(len(times), 1) / SEND_WINDOW
        times.reverse()
        busiest, oldest = 1, 0
        for newest, end in enumerate(times):
            while end - times[oldest] > SEND_WINDOW:
                oldest += 1
            if end >= start:
                busiest = max(busiest, newest - oldest + 1)
        return busiest / SEND_WINDOW

    def sent_until(self, moment: float) -> int:
        """The number after the stretch's last request sent at or before *moment*."""
        end = self.stretch.first
        for _, sent_at in self._from(end):
            if sent_at > moment:
                break
            end += 1
        return end

    def estimate(self, seq: int, burst: float) -> float | None:
        """The server's rate from request *seq*'s refusal (see ``estimate_rate``)."""
        refused_at = self.time_of(seq)
        if refused_at is None:
            return None
        first = self.sent - len(self._times) + 1  # the number of the oldest time kept
        stretch = self.stretch if first <= self.stretch.first else None
        return estimate_rate((seq, refused_at), stretch, self._between(seq), burst)

    def _between(self, seq: int) -> Iterator[tuple[int, float]]:
        """The stretch's sends before *seq* still in the history, oldest first."""
        for number, sent_at in self._from(self.stretch.first):
            if number >= seq:
                return
            yield number, sent_at

    def _from(self, seq: int) -> Iterator[tuple[int, float]]:
        """The sends from number *seq* on that are still in the history, oldest first."""
        oldest = self.sent - len(self._times) + 1
        skip = max(0, seq - oldest)
        return enumerate(itertools.islice(self._times, skip, None), start=oldest + skip)
