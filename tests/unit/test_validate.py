"""The number checks every option and argument goes through (inkit_async/_validate.py).

Plain values, no client: each hostile value is refused with the right type and message,
and what passes comes back as a plain int or float holding the value checked.
"""

from __future__ import annotations

import math
import sys
from decimal import Decimal
from fractions import Fraction

import attrs
import pytest

from inkit_async import Backoff, BatchCache, Throttle
from inkit_async._pagination import ListFilters
from inkit_async._polling import check_poll_interval, check_wait_timeout
from inkit_async._validate import (
    check_int,
    check_number,
    check_optional_int,
    check_optional_number,
    check_optional_seconds,
    check_seconds,
    int_field,
    number_field,
    plain_int,
    plain_number,
)


class LyingFloat(float):
    """A float subclass whose own methods lie: every comparison passes, it reads as NaN."""

    def __float__(self) -> float:
        return math.nan

    def __ge__(self, other: object) -> bool:
        return True

    def __gt__(self, other: object) -> bool:
        return True

    def __le__(self, other: object) -> bool:
        return True

    def __lt__(self, other: object) -> bool:
        return False

    def __repr__(self) -> str:
        return "LyingFloat(fine)"


class LyingInt(int):
    """An int subclass whose conversions and comparisons lie."""

    def __int__(self) -> int:
        return 10**6

    def __index__(self) -> int:
        return 10**6

    def __ge__(self, other: object) -> bool:
        return True

    def __lt__(self, other: object) -> bool:
        return False


HUGE = 10**400  # beyond the largest float
ENORMOUS = 10**5000  # beyond the digits repr() will print


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("1", "str"),
        (None, "NoneType"),
        (True, "bool"),
        (False, "bool"),
        (Decimal("1.5"), "Decimal"),
        (Fraction(1, 2), "Fraction"),
        (1 + 0j, "complex"),
        ([1], "list"),
    ],
)
def test_a_number_of_another_type_is_a_type_error(value, shown):
    """A str, None, a bool, a Decimal, a Fraction: TypeError naming the option and the type."""
    with pytest.raises(TypeError) as info:
        check_number("rate", value)
    assert str(info.value) == f"rate must be a number, got {shown}"
    with pytest.raises(TypeError) as info:
        check_seconds("ttl", value)
    assert str(info.value) == f"ttl must be a number of seconds, got {shown}"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (math.nan, "nan"),
        (math.inf, "inf"),
        (-math.inf, "-inf"),
        (-1, "-1"),
        (-0.5, "-0.5"),
        (HUGE, "an int of 1329 bits"),
        (-HUGE, "an int of 1329 bits"),
        (ENORMOUS, "an int of 16610 bits"),
    ],
    ids=["nan", "inf", "-inf", "-1", "-0.5", "1e400", "-1e400", "1e5000"],
)
def test_an_impossible_number_is_a_value_error(value, shown):
    """NaN, infinities, negatives and ints too large for a float: ValueError, shown briefly."""
    with pytest.raises(ValueError) as info:
        check_number("max_wait", value)
    assert str(info.value) == f"max_wait must be a finite number >= 0, got {shown}"


def test_bounds_read_as_they_are_given():
    """minimum, maximum and above (a strict lower bound) shape the check and the message."""
    assert check_number("x", 0) == 0
    with pytest.raises(ValueError, match=r"^x must be a finite number > 0, got 0$"):
        check_number("x", 0, above=True)
    with pytest.raises(ValueError, match=r"^lease_ttl must be a finite number >= 0\.5, got 0\.4$"):
        check_number("lease_ttl", 0.4, minimum=0.5)
    assert check_number("lease_ttl", 0.5, minimum=0.5) == 0.5
    with pytest.raises(ValueError, match=r"^jitter must be a finite number between 0 and 1, got 2"):
        check_number("jitter", 2, maximum=1)
    with pytest.raises(ValueError, match=r"between 0 and 1, got nan$"):
        check_number("jitter", math.nan, maximum=1)
    assert check_number("jitter", 1, maximum=1) == 1
    assert check_number("big", sys.float_info.max) == sys.float_info.max
    assert check_number("big", 10**300) == 10**300  # an int a float can hold


def test_none_passes_only_where_it_is_allowed():
    """check_optional_*: None comes back as it is, and the TypeError says None would do."""
    assert check_optional_number("rate_limit", None) is None
    assert check_optional_seconds("timeout", None) is None
    assert check_optional_int("max_in_flight", None, minimum=1) is None
    with pytest.raises(TypeError, match=r"^rate_limit must be a number or None, got str$"):
        check_optional_number("rate_limit", "5")
    with pytest.raises(TypeError, match=r"^timeout must be a number of seconds or None, got str$"):
        check_optional_seconds("timeout", "5")
    with pytest.raises(TypeError, match=r"^max_in_flight must be an int or None, got float$"):
        check_optional_int("max_in_flight", 1.0, minimum=1)
    with pytest.raises(ValueError, match=r"^timeout must be a finite number > 0, got 0$"):
        check_optional_seconds("timeout", 0, above=True)
    with pytest.raises(TypeError, match=r"^rate must be a number, got NoneType$"):
        check_number("rate", None)


def test_what_passes_is_a_plain_int_or_float():
    """An int stays an int and a float a float (30 stays 30), as exact types."""
    assert type(check_number("t", 30)) is int
    assert type(check_number("t", 30.0)) is float
    assert type(check_seconds("t", 2.5)) is float
    assert type(check_int("n", 3, minimum=0)) is int


def test_a_float_subclass_is_read_by_its_stored_value():
    """A float subclass counts as a float, by the value it stores; its lying methods never run."""
    liar = LyingFloat(2.5)
    checked = check_number("timeout", liar)
    assert type(checked) is float
    assert checked == 2.5
    # Its comparisons would let a negative through, and its __float__ says NaN.
    with pytest.raises(ValueError, match=r"^timeout must be a finite number >= 0, got -1\.0$"):
        check_number("timeout", LyingFloat(-1.0))
    with pytest.raises(ValueError, match=r"got nan$"):
        check_number("timeout", LyingFloat(math.nan))


def test_an_int_subclass_is_read_by_its_stored_value():
    """An int subclass counts as an int, by the value it stores, whatever __int__ says."""
    checked = check_int("max_retries", LyingInt(3), minimum=0)
    assert type(checked) is int
    assert checked == 3
    with pytest.raises(ValueError, match=r"^max_retries must be >= 0, got -2$"):
        check_int("max_retries", LyingInt(-2), minimum=0)
    assert type(check_number("rate", LyingInt(4))) is int


@pytest.mark.parametrize(
    ("value", "shown"),
    [("1", "str"), (1.0, "float"), (True, "bool"), (None, "NoneType"), (Decimal(1), "Decimal")],
)
def test_an_int_of_another_type_is_a_type_error(value, shown):
    """A float (even 1.0), a bool, a str, None, a Decimal: not an int."""
    with pytest.raises(TypeError) as info:
        check_int("max_size", value, minimum=1)
    assert str(info.value) == f"max_size must be an int, got {shown}"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "max_size must be >= 1, got 0"),
        (-1, "max_size must be >= 1, got -1"),
        (-HUGE, "max_size must be >= 1, got an int of 1329 bits"),
        (-ENORMOUS, "max_size must be >= 1, got an int of 16610 bits"),
    ],
    ids=["0", "-1", "-1e400", "-1e5000"],
)
def test_an_int_below_its_minimum_is_a_value_error(value, message):
    """Below the minimum: ValueError; a huge one is described, not printed."""
    with pytest.raises(ValueError) as info:
        check_int("max_size", value, minimum=1)
    assert str(info.value) == message


def test_an_int_range_names_both_ends():
    """With a maximum, the message gives the range, on either side of it."""
    for value in (0, 1001, HUGE):
        with pytest.raises(ValueError, match=r"^page_size must be between 1 and 1000, got "):
            check_int("page_size", value, minimum=1, maximum=1000)
    assert check_int("page_size", 1000, minimum=1, maximum=1000) == 1000
    assert check_int("reserve", HUGE, minimum=1) == HUGE  # no maximum: any size


def test_plain_converters_read_numbers_and_pass_anything_else_on():
    """plain_number/plain_int never refuse: a number comes back plain, the rest unchanged."""
    assert type(plain_number(LyingFloat(1.5))) is float
    assert plain_number(LyingFloat(1.5)) == 1.5
    assert type(plain_int(LyingInt(2))) is int
    assert type(plain_number(LyingInt(2))) is int
    text = "30"
    assert plain_number(text) is text  # type: ignore[arg-type]
    yes = True
    assert plain_number(yes) is yes
    assert plain_int(yes) is yes
    assert plain_int(1.5) == 1.5  # type: ignore[arg-type] - for the validator to refuse
    assert plain_number(None) is None  # type: ignore[arg-type]


@attrs.frozen
class _Record:
    seconds: float = attrs.field(converter=plain_number, validator=number_field(above=True))
    count: int = attrs.field(converter=plain_int, validator=int_field(minimum=1, maximum=9))


def test_field_validators_name_the_field():
    """number_field and int_field check under the attrs field's own name."""
    record = _Record(LyingFloat(0.5), LyingInt(3))
    assert (type(record.seconds), type(record.count)) == (float, int)
    with pytest.raises(ValueError, match=r"^seconds must be a finite number > 0, got 0$"):
        _Record(0, 3)
    with pytest.raises(TypeError, match=r"^count must be an int, got bool$"):
        _Record(1, count=True)
    with pytest.raises(ValueError, match=r"^count must be between 1 and 9, got 10$"):
        _Record(1, 10)


# -- every user of the checks ------------------------------------------------------------


def _redis_throttle(**options: object) -> object:
    from inkit_async.redis import RedisThrottle

    return RedisThrottle.from_url("redis://127.0.0.1:1/0", **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (lambda: Backoff(initial=HUGE), ValueError, "initial must be a finite number >= 0, got an"),
        (lambda: Backoff(maximum=True), TypeError, "maximum must be a number, got bool"),
        (lambda: Backoff(jitter=1.5), ValueError, "jitter must be a finite number between 0 and 1"),
        (lambda: Backoff(jitter=math.nan), ValueError, "jitter must be a finite number between"),
        (lambda: BatchCache(ttl=HUGE), ValueError, "ttl must be a finite number > 0, got an int"),
        (lambda: BatchCache(ttl=0), ValueError, "ttl must be a finite number > 0, got 0"),
        (lambda: BatchCache(max_size=True), TypeError, "max_size must be an int, got bool"),
        (
            lambda: check_poll_interval(HUGE),
            ValueError,
            "poll_interval must be a finite number > 0",
        ),
        (lambda: check_poll_interval(value=True), TypeError, "poll_interval must be a number of"),
        (lambda: check_wait_timeout("5"), TypeError, "timeout must be a number of seconds or None"),
        (lambda: check_wait_timeout(-math.inf), ValueError, "timeout must be a finite number > 0"),
        (lambda: ListFilters(page_size=HUGE), ValueError, "page_size must be between 1 and 1000"),
        (lambda: ListFilters(page_size=2.0), TypeError, "page_size must be an int or None, got"),
        (lambda: _redis_throttle(lease_ttl=HUGE), ValueError, "lease_ttl must be a finite number"),
        (
            lambda: _redis_throttle(lease_ttl=0.1),
            ValueError,
            "lease_ttl must be a finite number >=",
        ),
        (lambda: _redis_throttle(timeout=True), TypeError, "timeout must be a number, got bool"),
        (lambda: _redis_throttle(max_in_flight=True), TypeError, "max_in_flight must be an int"),
        (lambda: _redis_throttle(max_in_flight=0), ValueError, "max_in_flight must be >= 1, got 0"),
        (
            lambda: Throttle(rate_limit=HUGE),
            ValueError,
            "rate_limit must be a finite number >= 0.5",
        ),
        (lambda: Throttle(rate_limit=0.1), ValueError, "rate_limit must be a finite number >= 0.5"),
        (lambda: Throttle(max_wait="5"), TypeError, "max_wait must be a number of seconds, got"),
        (lambda: Throttle(retry_ratio=math.nan), ValueError, "retry_ratio must be a finite number"),
        (lambda: Throttle(retry_reserve=2.0), TypeError, "retry_reserve must be an int, got float"),
        (lambda: Throttle(outage_after=0), ValueError, "outage_after must be >= 1, got 0"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_every_user_refuses_hostile_numbers_by_name(build, error, message):
    """Backoff, BatchCache, wait/watch, list and RedisThrottle: the checks, under their names."""
    with pytest.raises(error) as info:
        build()
    assert str(info.value).startswith(message)


def test_every_user_keeps_numbers_plain():
    """What passes is stored as a plain int or float, whatever subclass it came as."""
    backoff = Backoff(initial=LyingFloat(0.25), maximum=LyingInt(4), jitter=LyingFloat(0.5))
    assert [type(backoff.initial), type(backoff.maximum), type(backoff.jitter)] == [
        float,
        int,
        float,
    ]
    assert backoff.delay(0) <= 0.25
    cache = BatchCache(ttl=LyingFloat(5.0), max_size=LyingInt(7))
    assert (type(cache.ttl), type(cache.max_size), cache.ttl, cache.max_size) == (float, int, 5, 7)
    assert type(check_poll_interval(LyingInt(2))) is float
    assert type(check_wait_timeout(LyingFloat(2.5))) is float
    assert check_wait_timeout(None) is None
    filters = ListFilters(page_size=LyingInt(50))
    assert type(filters.page_size) is int
    assert filters.params(1) == {"page": 1, "page_size": 50}
