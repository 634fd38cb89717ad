"""How long to wait before trying again: exponential backoff, and ``Retry-After``."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import attrs

from ._constants import DEFAULT_BACKOFF_INITIAL, DEFAULT_BACKOFF_JITTER, DEFAULT_BACKOFF_MAX
from ._validate import number_field, plain_number

__all__ = ["Backoff", "parse_retry_after"]


@attrs.frozen(kw_only=True)
class Backoff:
    """Exponential backoff with jitter, for retries the server gave no ``Retry-After`` for.

    Retry *n* (counting from 0) waits ``min(maximum, initial * 2**n)`` seconds, shortened
    by up to ``jitter`` (a fraction) at random. With the defaults: about 0.5 s, then 1 s,
    then 2 s ... up to 8 s. Pass ``Backoff(initial=0, maximum=0)`` in tests to retry at once.
    """

    initial: float = attrs.field(
        default=DEFAULT_BACKOFF_INITIAL, converter=plain_number, validator=number_field()
    )
    """Seconds before the first retry."""
    maximum: float = attrs.field(
        default=DEFAULT_BACKOFF_MAX, converter=plain_number, validator=number_field()
    )
    """Longest wait in seconds, however many retries came before."""
    # At most 1: a larger jitter would make waits negative.
    jitter: float = attrs.field(
        default=DEFAULT_BACKOFF_JITTER, converter=plain_number, validator=number_field(maximum=1)
    )
    """Fraction (0 to 1) by which each wait is shortened at random."""

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
