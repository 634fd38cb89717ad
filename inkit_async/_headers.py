"""The headers a request carries: the SDK's own, and the caller's ``default_headers``.

``default_headers=`` (on ``AsyncInkit``, ``BlockingInkit`` and ``with_options``) is
hostile input like any other: it is checked here, once, where it enters
(``headers_from``, the record's converter), and kept as a ``DefaultHeaders``, an
immutable mapping that never shows its values.

**Which headers a caller may set.** Any whose name is an HTTP token (RFC 9110), with a
value of visible ASCII characters and inner spaces or tabs, except those the SDK owns
(``RESERVED``):

- ``X-Inkit-API-Token``: the token comes from ``api_token`` (or ``INKIT_API_TOKEN``)
  alone. A second spelling would send two tokens, or one the client's ``Secrets`` do
  not know and so could not mask.
- ``Accept``, ``Accept-Encoding``, ``Content-Type``: the SDK sends and reads JSON, and
  decodes (and bounds) compressed bodies itself; other values would break the calls.
- ``Proxy-Authorization``: through an ``https://`` tunnel a header set here goes to the
  API, not to the proxy; a proxy's credentials belong in its URL (``proxy=``).
- The headers of HTTP's framing and connection (``Host``, ``Content-Length``,
  ``Transfer-Encoding``, ``Connection``, ...): the HTTP library writes them; a second
  value is how requests are smuggled.

``User-Agent`` may be replaced (a gateway may require its own); ``Authorization``
(for a gateway in front of the API), ``Cookie`` and any other may be set.

**Every value is treated as a credential**: the SDK cannot tell a tenant name from a
gateway's key, so each value joins the client's ``Secrets``. It is masked in what
errors keep of a request (by name, whatever its length), in the text built from an
answer that echoes it (by the length rule of ``Secrets``), and never shown by a repr;
a ``DefaultHeaders`` refuses to be pickled.
"""

from __future__ import annotations

import platform
import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Final, NoReturn

from ._constants import TOKEN_HEADER
from ._version import __version__

if TYPE_CHECKING:
    from ._config import ClientOptions
    from ._exceptions import Secrets

__all__ = [
    "MAX_HEADERS",
    "MAX_VALUE_LENGTH",
    "RESERVED",
    "USER_AGENT",
    "DefaultHeaders",
    "headers_from",
    "merged_headers",
    "request_headers",
]

#: The SDK and the Python it runs on; not the HTTP library, which depends on the sender.
USER_AGENT: Final = (
    f"inkit-async/{__version__} {platform.python_implementation()}/{platform.python_version()}"
)

#: Headers a caller may not set (lower case), each with the reason the error gives.
RESERVED: Final[Mapping[str, str]] = {
    TOKEN_HEADER.lower(): "the token is sent from api_token (or INKIT_API_TOKEN) alone",
    "accept": "the SDK asks for JSON and reads only JSON",
    "accept-encoding": "the SDK decodes (and bounds) compressed answers itself",
    "content-type": "the SDK sends JSON bodies and says so itself",
    "proxy-authorization": (
        "through an https:// tunnel it would reach the API, not the proxy: put the "
        "proxy's credentials in its URL (proxy=...)"
    ),
    **dict.fromkeys(
        (
            "host",
            "content-length",
            "transfer-encoding",
            "connection",
            "keep-alive",
            "proxy-connection",
            "te",
            "trailer",
            "upgrade",
            "expect",
        ),
        "the HTTP library writes it for each request",
    ),
}
#: At most this many default headers.
MAX_HEADERS: Final = 64
#: At most this many characters in one header value (servers refuse longer lines).
MAX_VALUE_LENGTH: Final = 8192

# RFC 9110 section 5.6.2: a token.
_NAME: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}")
# Visible ASCII, with spaces and tabs between; nothing before or after (RFC 9110 5.5).
_VALUE: Final = re.compile(r"(?:[\x21-\x7e](?:[\x21-\x7e \t]*[\x21-\x7e])?)?")


class DefaultHeaders(Mapping[str, str]):
    """Checked default headers: an immutable mapping, case-insensitive, values never shown.

    Made by ``headers_from`` only. Two are equal (and hash alike) when they hold the
    same names (in any case, in any order) with the same values (a ``dict`` too):
    variants with equal headers share requests under way.
    """

    __slots__ = ("_folded", "_items", "_key")

    _items: tuple[tuple[str, str], ...]
    _folded: dict[str, str]
    _key: frozenset[tuple[str, str]]

    def __init__(self, items: tuple[tuple[str, str], ...] = ()) -> None:
        """Hold *items*, checked already (``headers_from``)."""
        self._items = items
        self._folded = {name.lower(): value for name, value in items}
        self._key = frozenset(self._folded.items())

    def __getitem__(self, name: str) -> str:
        """The value of *name*, in any case."""
        if not isinstance(name, str):
            raise KeyError(name)
        return self._folded[name.lower()]

    def __contains__(self, name: object) -> bool:
        """Whether *name* (in any case) is set."""
        return isinstance(name, str) and name.lower() in self._folded

    def __iter__(self) -> Iterator[str]:
        """The names as given."""
        return (name for name, _ in self._items)

    def __len__(self) -> int:
        """How many headers."""
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        """Same names (in any case) with the same values."""
        if isinstance(other, DefaultHeaders):
            return self._key == other._key
        if isinstance(other, Mapping):
            pairs = other.items()  # pyright: ignore[reportUnknownVariableType]
            if all(isinstance(name, str) for name, _ in pairs):  # pyright: ignore[reportUnknownVariableType]
                return self._key == frozenset((str(n).lower(), v) for n, v in pairs)  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
            return False
        return NotImplemented

    def __hash__(self) -> int:
        """By the names (in any case) and values."""
        return hash(self._key)

    def folded(self) -> tuple[tuple[str, str], ...]:
        """The headers with their names in lower case, sorted: equal for equal headers."""
        return tuple(sorted(self._folded.items()))

    def __repr__(self) -> str:
        """The names only: a value may be a credential."""
        names = ", ".join(name for name, _ in self._items)
        return f"<DefaultHeaders [{names}], values not shown>"

    def __copy__(self) -> DefaultHeaders:
        """Itself: it never changes."""
        return self

    def __deepcopy__(self, memo: object) -> DefaultHeaders:
        """Itself: it never changes."""
        return self

    def __reduce__(self) -> NoReturn:
        """Refuse: the values may be credentials, and a pickle would carry them."""
        raise TypeError("DefaultHeaders cannot be pickled: its values may be credentials")

    @property
    def items_as_given(self) -> tuple[tuple[str, str], ...]:
        """The headers, in the order and case given."""
        return self._items


NO_HEADERS: Final = DefaultHeaders()


def headers_from(default_headers: Mapping[str, str] | None) -> DefaultHeaders:
    """*default_headers* checked; ``None``: none.

    No message shows a value (it may be a credential), nor a name that is not a token.

    Raises:
        TypeError: Not a mapping, or a name or value that is not a ``str``.
        ValueError: A name that is not an HTTP token, one the SDK owns (``RESERVED``),
            two spellings of one name, a value with a control character (CR, LF, NUL,
            ...), a non-ASCII character or whitespace at either end, or over
            ``MAX_HEADERS`` headers or ``MAX_VALUE_LENGTH`` characters.
    """
    if default_headers is None:
        return NO_HEADERS
    if isinstance(default_headers, DefaultHeaders):
        return default_headers
    if not isinstance(default_headers, Mapping):
        raise TypeError(
            "default_headers must be a mapping of header names to values (a dict), "
            f"got {type(default_headers).__name__}"
        )
    if len(default_headers) > MAX_HEADERS:
        raise ValueError(
            f"default_headers may hold at most {MAX_HEADERS} headers, got {len(default_headers)}"
        )
    items: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name, value in default_headers.items():
        _check_name(name)
        folded = name.lower()
        if folded in seen:
            raise ValueError(f"default_headers sets {name!r} twice (names ignore case)")
        seen.add(folded)
        _check_value(name, value)
        items.append((name, value))
    return DefaultHeaders(tuple(items))


def _check_name(name: object) -> None:
    if not isinstance(name, str):
        raise TypeError(f"default_headers names must be str, got {type(name).__name__}")
    if _NAME.fullmatch(name) is None:
        raise ValueError(
            "default_headers has a name that is not an HTTP token (letters, digits and "
            "!#$%&'*+-.^_`|~ only, at most 256: no space, colon or control character); "
            "it is not shown"
        )
    reason = RESERVED.get(name.lower())
    if reason is not None:
        raise ValueError(f"default_headers may not set {name!r}: {reason}")


def _check_value(name: str, value: object) -> None:
    # Never the value in a message: it may be a credential.
    if not isinstance(value, str):
        raise TypeError(f"default_headers[{name!r}] must be a str, got {type(value).__name__}")
    if len(value) > MAX_VALUE_LENGTH:
        raise ValueError(
            f"default_headers[{name!r}] must be at most {MAX_VALUE_LENGTH:,} characters, "
            f"got {len(value):,}"
        )
    if _VALUE.fullmatch(value) is None:
        raise ValueError(
            f"default_headers[{name!r}] may hold only visible ASCII characters with spaces "
            "or tabs between them: it has a control character (CR, LF, NUL, ...), a "
            "non-ASCII one, or whitespace at an end (the value is not shown)"
        )


def merged_headers(current: DefaultHeaders, given: Mapping[str, str] | None) -> DefaultHeaders:
    """``with_options(default_headers=...)``: *given* over *current*; ``None``: none at all.

    A header of *given* replaces the one of the same name (in any case) in *current*;
    the others are kept.
    """
    if given is None:
        return NO_HEADERS
    added = headers_from(given)
    kept = tuple((name, value) for name, value in current.items_as_given if name not in added)
    return DefaultHeaders(kept + added.items_as_given)


def request_headers(
    options: ClientOptions, secrets: Secrets
) -> tuple[dict[str, str], dict[str, str], Secrets]:
    """The headers of a request without a body and of one with JSON, and their ``Secrets``.

    The SDK's own headers, with the caller's default headers (a ``User-Agent`` among
    them replaces the SDK's); the client's *secrets* with those headers' values added.
    """
    extra = options.default_headers
    headers = {
        TOKEN_HEADER: options.api_token,
        "Accept": "application/json",
        "Accept-Encoding": "gzip, deflate",
    }
    if "user-agent" not in extra:
        headers["User-Agent"] = USER_AGENT
    headers.update(extra.items_as_given)
    return headers, {**headers, "Content-Type": "application/json"}, secrets.with_headers(extra)
