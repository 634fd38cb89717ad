"""When to try again and how long to wait: backoff, ``Retry-After``, the shared cooldown."""

from __future__ import annotations

import asyncio
import math
import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import attrs

from ._constants import DEFAULT_BACKOFF_INITIAL, DEFAULT_BACKOFF_JITTER, DEFAULT_BACKOFF_MAX

__all__ = ["Backoff", "Cooldown", "parse_retry_after"]


def _non_negative(_: object, attribute: attrs.Attribute[float], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{attribute.name} must be a number, got {type(value).__name__}")
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{attribute.name} must be a finite number >= 0, got {value!r}")


@attrs.frozen(kw_only=True)
class Backoff:
    """Exponential backoff with jitter, for retries the server gave no ``Retry-After`` for.

    Retry *n* (counting from 0) waits ``min(maximum, initial * 2**n)`` seconds, shortened
    by up to ``jitter`` (a fraction) at random. With the defaults: about 0.5 s, then 1 s,
    then 2 s ... up to 8 s. Pass ``Backoff(initial=0, maximum=0)`` in tests to retry at once.
    """

    initial: float = attrs.field(default=DEFAULT_BACKOFF_INITIAL, validator=_non_negative)
    """Seconds before the first retry."""
    maximum: float = attrs.field(default=DEFAULT_BACKOFF_MAX, validator=_non_negative)
    """Longest wait in seconds, however many retries came before."""
    jitter: float = attrs.field(default=DEFAULT_BACKOFF_JITTER, validator=_non_negative)
    """Fraction (0 to 1) by which each wait is shortened at random."""

    def __attrs_post_init__(self) -> None:
        """Reject a jitter above 1, which would make waits negative."""
        if self.jitter > 1:
            raise ValueError(f"jitter must be between 0 and 1, got {self.jitter!r}")

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number *retry* (0 for the first retry)."""
        # Cap the exponent: 2**1100 overflows a float long before it matters.
        base = min(self.maximum, self.initial * 2.0 ** min(retry, 64))
        return base * (1.0 - self.jitter * random.random())  # noqa: S311 - not cryptographic


def parse_retry_after(value: str | None) -> float | None:
    """Read a ``Retry-After`` header: delay-seconds or an HTTP date, as seconds from now.

    Returns ``None`` when the header is absent or unreadable; a date in the past reads as
    0 (retry at once).
    """
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class Cooldown:
    """A pause every caller of one client honours after a 429 with ``Retry-After``.

    Shared by a client and its ``with_options`` variants. No request leaves the client
    until the pause is over; a later, longer pause extends it, a shorter one does not
    shorten it.
    """

    __slots__ = ("_until",)

    def __init__(self) -> None:
        self._until = 0.0

    def extend(self, seconds: float) -> None:
        """Pause new requests for *seconds* from now (unless already paused longer)."""
        until = asyncio.get_running_loop().time() + seconds
        self._until = max(until, self._until)

    def remaining(self) -> float:
        """Seconds left in the current pause (0 when there is none)."""
        if not self._until:
            return 0.0
        return max(0.0, self._until - asyncio.get_running_loop().time())

    async def wait(self) -> None:
        """Return once no pause is active (at once on the fast path)."""
        while (remaining := self.remaining()) > 0:
            await asyncio.sleep(remaining)
