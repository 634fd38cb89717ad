"""How long to wait before trying again: exponential backoff, and ``Retry-After``."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import attrs

from ._constants import DEFAULT_BACKOFF_INITIAL, DEFAULT_BACKOFF_JITTER, DEFAULT_BACKOFF_MAX

__all__ = ["Backoff", "parse_retry_after"]


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
