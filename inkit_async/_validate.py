"""The checks of every number an option or argument takes, written once.

Each check refuses a wrong type with ``TypeError`` and an impossible value with
``ValueError``, and names the option in its message:

- a ``bool`` is never a number here (``True`` is an ``int`` to Python, but never a count
  or a number of seconds), nor is a ``str``, a ``Decimal`` or any other type;
- NaN, either infinity, an ``int`` too large for a ``float`` and a value outside the
  range are impossible values.

What passes comes back as a plain ``int`` or ``float`` holding the value that was
checked. A subclass of either (``numpy.float64``, or one whose comparisons or
``__float__`` lie) is read once, by the value it stores, and none of its own methods
runs again: the number the checks saw is the number that is used. ``plain_number`` and
``plain_int`` do that reading alone, as converters of ``attrs`` records whose
validators (``number_field``, ``int_field``) then check the plain value. Where ``None``
is allowed too, the ``check_optional_*`` form of a check passes it as it is.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Final, TypeAlias

if TYPE_CHECKING:
    from collections.abc import Callable

    import attrs

    #: An attrs validator: ``(instance, attribute, value) -> None``.
    _Validator: TypeAlias = Callable[[object, attrs.Attribute[Any], object], None]

__all__ = [
    "check_int",
    "check_number",
    "check_optional_int",
    "check_optional_number",
    "check_optional_seconds",
    "check_seconds",
    "int_field",
    "number_field",
    "plain_int",
    "plain_number",
]

#: Ints longer than this many bits are described, not shown: their digits would
#: fill the message (and past 4,300 digits ``repr`` itself raises).
_SHOWN_BITS = 64
#: What a duration takes, as its ``TypeError`` says.
_SECONDS: Final = "a number of seconds"


def _plain(value: object) -> int | float | None:
    """*value* as an exact ``int`` or ``float``; ``None`` when it is neither (or a bool)."""
    if isinstance(value, bool):
        return None
    # int.__int__ and float.__float__ read the stored value of a subclass, whatever
    # methods the subclass overrides; for an exact int or float they return it as it is.
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, float):
        return float.__float__(value)
    return None


def _shown(value: float) -> str:
    if isinstance(value, int) and value.bit_length() > _SHOWN_BITS:
        return f"an int of {value.bit_length()} bits"
    return repr(value)


def _is_finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond the largest float
        return False


def plain_number(value: float) -> float:
    """*value* as a plain ``int`` or ``float`` when it is a number; anything else as it is.

    A converter for ``attrs`` fields: it never refuses, the field's validator does.
    """
    number = _plain(value)
    return value if number is None else number


def plain_int(value: int) -> int:
    """*value* as a plain ``int`` when it is one (not a bool); anything else as it is.

    A converter for ``attrs`` fields: it never refuses, the field's validator does.
    """
    number = _plain(value)
    return number if isinstance(number, int) else value


def check_number(
    name: str,
    value: object,
    *,
    minimum: float = 0,
    maximum: float | None = None,
    above: bool = False,
    what: str = "a number",
) -> float:
    """*value* as a plain ``int`` or ``float``, once it is a finite number in range.

    Args:
        name: The option, for the messages.
        value: What was given.
        minimum: The least value allowed.
        maximum: The greatest value allowed, if any.
        above: Whether *value* must be above *minimum* (``> 0``) rather than at least it.
        what: What the option takes, for the ``TypeError``: ``"a number of seconds"``.

    Raises:
        TypeError: *value* is not an ``int`` or ``float`` (a ``bool`` is neither):
            ``"ttl must be a number of seconds, got str"``.
        ValueError: *value* is NaN, infinite, too large for a ``float`` or out of range:
            ``"ttl must be a finite number > 0, got 0"``.
    """
    number = _plain(value)
    if number is None:
        raise TypeError(f"{name} must be {what}, got {type(value).__name__}")
    low = number > minimum if above else number >= minimum
    if not (_is_finite(number) and low and (maximum is None or number <= maximum)):
        if maximum is not None:
            bound = f"between {minimum:g} and {maximum:g}"
        else:
            bound = f"{'>' if above else '>='} {minimum:g}"
        raise ValueError(f"{name} must be a finite number {bound}, got {_shown(number)}")
    return number


def check_optional_number(
    name: str, value: object, *, minimum: float = 0, above: bool = False, what: str = "a number"
) -> float | None:
    """``check_number``, except that ``None`` passes as it is (and the ``TypeError`` says so)."""
    if value is None:
        return None
    return check_number(name, value, minimum=minimum, above=above, what=f"{what} or None")


def check_seconds(name: str, value: object, *, minimum: float = 0, above: bool = False) -> float:
    """``check_number`` for a duration: its ``TypeError`` says "a number of seconds"."""
    return check_number(name, value, minimum=minimum, above=above, what=_SECONDS)


def check_optional_seconds(name: str, value: object, *, above: bool = False) -> float | None:
    """``check_seconds``, except that ``None`` passes as it is (and the ``TypeError`` says so)."""
    return check_optional_number(name, value, above=above, what=_SECONDS)


def check_int(
    name: str, value: object, *, minimum: int, maximum: int | None = None, what: str = "an int"
) -> int:
    """*value* as a plain ``int``, once it is a whole number in range.

    Raises:
        TypeError: *value* is not an ``int`` (a ``bool`` and a ``float`` such as ``2.0``
            are not): ``"max_size must be an int, got str"``.
        ValueError: *value* is out of range: ``"max_size must be >= 1, got 0"``, or
            ``"page_size must be between 1 and 1000, got 0"`` with a *maximum*.
    """
    number = _plain(value)
    if not isinstance(number, int):
        raise TypeError(f"{name} must be {what}, got {type(value).__name__}")
    if maximum is not None and not minimum <= number <= maximum:
        raise ValueError(f"{name} must be between {minimum} and {maximum}, got {_shown(number)}")
    if number < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {_shown(number)}")
    return number


def check_optional_int(
    name: str, value: object, *, minimum: int, maximum: int | None = None
) -> int | None:
    """``check_int``, except that ``None`` passes as it is (and the ``TypeError`` says so)."""
    if value is None:
        return None
    return check_int(name, value, minimum=minimum, maximum=maximum, what="an int or None")


def number_field(
    *,
    minimum: float = 0,
    maximum: float | None = None,
    above: bool = False,
    what: str = "a number",
) -> _Validator:
    """An ``attrs`` validator: ``check_number`` under the field's own name."""

    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        check_number(
            attribute.name, value, minimum=minimum, maximum=maximum, above=above, what=what
        )

    return check


def int_field(*, minimum: int, maximum: int | None = None) -> _Validator:
    """An ``attrs`` validator: ``check_int`` under the field's own name."""

    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        check_int(attribute.name, value, minimum=minimum, maximum=maximum)

    return check
