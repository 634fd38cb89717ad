"""The client's options as one frozen record: declared, defaulted and checked in one place.

``ClientOptions`` is the one declaration of every option: its name, its default, what
``None`` means for it, its checks and its scope (``OptionScope``, in each field's
metadata). The rest is derived from it or held to it:

- ``AsyncInkit(...)`` passes its arguments on as they are: the record reads the
  environment for the token and the API root, fills the defaults and checks them all.
- ``PER_CALL_OPTIONS`` (what ``with_options`` may change) and ``FORWARDED_OPTIONS``
  (what ``FakeInkit.client`` forwards) are read from the fields' scopes.
- The spellings typing needs, ``AsyncInkit``'s explicit signature (for IDEs and the
  API reference), ``with_options``'s, and the ``VariantArguments`` and
  ``OptionArguments`` TypedDicts, are held to the record by ``tests/test_options.py``:
  names, defaults and annotations must agree.

The record holds the options as given (``timeout=30`` stays ``30``, an
``httpx.Timeout`` stays that object), with ``None`` replaced by what it stands for
and numbers read as plain ``int``/``float`` (``_validate.py``); what the engine needs
from them, such as the per-attempt deadline (``attempt_deadline``), is derived by
properties.
``AsyncInkit.with_options`` builds its variant with ``attrs.evolve``, so every option
round-trips and every change goes through the same converters and validators as the
constructor's arguments.
"""

from __future__ import annotations

import enum
import os
import ssl
from typing import TYPE_CHECKING, Any, Final, Literal, TypedDict, final
from urllib.parse import urlsplit
from urllib.request import getproxies

import attrs
import httpx

from ._cache import BatchCache
from ._constants import (
    DEFAULT_BASE_URL,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_RETRY_AFTER,
    DEFAULT_TIMEOUT,
    ENV_API_TOKEN,
    ENV_BASE_URL,
    MAX_BASE_URL_LENGTH,
)
from ._exceptions import InkitError, Secrets
from ._headers import DefaultHeaders, headers_from, merged_headers
from ._retry import Backoff
from ._throttle import Throttle
from ._validate import (
    check_optional_seconds,
    check_seconds,
    int_field,
    number_field,
    plain_int,
    plain_number,
)
from ._wire import Timeouts

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from ._events import EventCallback
    from ._protocols import AsyncHTTPClient, AsyncHTTPTransport, HTTPTimeout

__all__ = [
    "FORWARDED_OPTIONS",
    "NOT_GIVEN",
    "OPTION_SCOPE",
    "PER_CALL_OPTIONS",
    "ClientOptions",
    "NotGiven",
    "OptionArguments",
    "OptionScope",
    "VariantArguments",
    "base_url_from",
    "client_secrets",
    "environment_proxy_urls",
    "evolved",
    "token_from",
]

#: The visible ASCII range: what an HTTP header value can carry unchanged.
_TOKEN_CHARACTERS: Final = frozenset(map(chr, range(0x21, 0x7F)))


@final
class NotGiven:
    """The type of ``NOT_GIVEN``: the default that marks an argument as left out.

    It tells "left out" (keep the client's value) from ``None`` (a value of its own:
    ``on_event=None`` removes the callback), as httpx's ``USE_CLIENT_DEFAULT`` and the
    OpenAI and Anthropic SDKs' ``NOT_GIVEN`` do. Private on purpose: nobody needs to
    pass it (leave the argument out; to forward options, forward ``**kwargs``), so it
    is not exported; it only shows, as ``NOT_GIVEN``, in ``with_options``'s signature.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        """``NOT_GIVEN``, as the signature shows it."""
        return "NOT_GIVEN"

    def __reduce__(self) -> str:
        """Copies and pickles stay the one ``NOT_GIVEN`` (compared by identity)."""
        return "NOT_GIVEN"


#: The one ``NotGiven``: an argument left out.
NOT_GIVEN: Final = NotGiven()


class OptionScope(enum.Enum):
    """Which part of a client an option belongs to, in each ``ClientOptions`` field's metadata."""

    CONNECTION = "connection"
    """Where requests go and how: the token, the root, proxies, TLS, the HTTP client.
    Fixed for a client and its variants; ``FakeInkit.client`` sets them itself."""
    SHARED = "shared"
    """What a client shares with its variants: slots, throttle, coalescing, cache."""
    PER_CALL = "per_call"
    """What ``with_options`` may change for a variant."""


#: The metadata key of a field's ``OptionScope``.
OPTION_SCOPE: Final = "inkit_async.scope"
_CONNECTION: Final = {OPTION_SCOPE: OptionScope.CONNECTION}
_SHARED: Final = {OPTION_SCOPE: OptionScope.SHARED}
_PER_CALL: Final = {OPTION_SCOPE: OptionScope.PER_CALL}


class VariantArguments(TypedDict, total=False):
    """The arguments of ``with_options``: the per-call options (``PER_CALL_OPTIONS``)."""

    timeout: float | HTTPTimeout
    deadline: float | None
    max_retries: int
    max_retry_after: float
    backoff: Backoff | None
    on_event: EventCallback | None
    default_headers: Mapping[str, str] | None


class OptionArguments(TypedDict, total=False):
    """The keyword options of ``AsyncInkit`` that ``FakeInkit.client`` forwards.

    Every option but the connection ones (``FORWARDED_OPTIONS``).
    """

    timeout: float | HTTPTimeout
    deadline: float | None
    max_retries: int
    max_concurrency: int
    max_retry_after: float
    backoff: Backoff | None
    on_event: EventCallback | None
    default_headers: Mapping[str, str] | None
    throttle: Throttle | Literal[False] | None
    coalesce: bool
    cache: BatchCache | None
    keep_responses: bool


def token_from(api_token: str | None) -> str:
    """The token given, else ``INKIT_API_TOKEN``.

    Raises:
        InkitError: Neither holds a token.
    """
    token = api_token if api_token is not None else os.environ.get(ENV_API_TOKEN)
    if not token:
        raise InkitError(
            f"No API token: pass api_token=... or set the {ENV_API_TOKEN} environment variable."
        )
    return token


def base_url_from(base_url: str | None) -> str:
    """The API root given, else ``INKIT_BASE_URL``, else the public API."""
    if base_url is not None:
        return base_url
    return os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL


def environment_proxy_urls() -> list[str]:
    """Every proxy URL in the environment's proxy variables (the URLs that may hold credentials).

    All of them, whatever scheme they are for: masking one a client does not use costs
    nothing, and a caller's own httpx client reads the same variables.
    """
    return [url for scheme, url in getproxies().items() if scheme != "no" and url]


def client_secrets(options: ClientOptions, proxies: Iterable[str | None] | None = None) -> Secrets:
    """Every credential of a client, for masking: its token and its proxies' user info.

    *proxies* are the proxy URLs the client's own connections go through, read once
    with them. Without them (a caller's ``http_client`` or ``transport``), the proxy
    variables: a caller's httpx client reads them itself, whatever the SDK's
    *trust_env* says.
    """
    if proxies is None:
        proxies = environment_proxy_urls()
    return Secrets(options.api_token, proxies)


def _check_token(_: object, __: object, token: Any) -> None:  # noqa: ANN401 - checked here
    if not isinstance(token, str):
        raise TypeError(f"api_token must be a str, got {type(token).__name__}")
    # Never echo the token: say what is wrong with it, not what it is.
    if not _TOKEN_CHARACTERS.issuperset(token):
        raise ValueError(
            "api_token may hold only visible ASCII characters; it contains whitespace, a "
            "control character or a non-ASCII one (often an invisible character pasted "
            "along with it)"
        )


def _check_base_url(_: object, __: object, base_url: Any) -> None:  # noqa: ANN401 - checked here
    """Refuse a base URL that is not a plain ``http(s)://host[:port][/path]`` API root.

    Credentials in it (``https://user:password@host/v1``, a user name alone too) are
    refused, not masked: the API authenticates with the token alone, and a URL that
    holds them would show them in ``repr(client)``, in every error's ``.request.url``,
    in httpx's log lines and in the command line's messages. No message here shows
    a URL that has an ``@`` in it. At most ``MAX_BASE_URL_LENGTH`` (2,048) characters,
    so that no request URL built on it can exceed httpx's limit.
    """
    if not isinstance(base_url, str):
        raise TypeError(f"base_url must be a str, got {type(base_url).__name__}")
    if len(base_url) > MAX_BASE_URL_LENGTH:
        raise ValueError(
            f"base_url must be at most {MAX_BASE_URL_LENGTH:,} characters, got {len(base_url):,}"
        )
    credentials = ValueError(
        "base_url must not hold a user name or password (user:password@host): the API "
        "authenticates with the token alone; pass it as api_token"
    )
    try:
        netloc = urlsplit(base_url).netloc
    except ValueError:
        netloc = base_url
    if "@" in netloc:
        raise credentials
    try:
        url = httpx.URL(base_url)
    except httpx.InvalidURL as exc:
        raise ValueError(f"base_url is not a valid URL: {exc}") from None
    if url.userinfo:
        raise credentials
    shown = "(not shown: it holds an @)" if "@" in base_url else repr(base_url)
    if url.scheme not in {"http", "https"} or not url.host:
        raise ValueError(f"base_url must be an http:// or https:// URL, got {shown}")
    if url.query or url.fragment:
        raise ValueError(f"base_url must not have a query or fragment, got {shown}")


def _check_timeout(_: object, __: object, timeout: object) -> None:
    if _library_of(timeout, "Timeout") is not None:
        return
    try:
        check_seconds("timeout", timeout, above=True)
    except TypeError:
        # Say that a Timeout is welcome too: a look-alike of another library's is refused.
        raise TypeError(
            "timeout must be a number of seconds, an httpx.Timeout or an httpx2.Timeout, "
            f"got {type(timeout).__module__}.{type(timeout).__qualname__}"
        ) from None


def _check_deadline(_: object, __: object, deadline: Any) -> None:  # noqa: ANN401 - checked here
    check_optional_seconds("deadline", deadline, above=True)


def _plain_deadline(value: float | None) -> float | None:
    """Seconds as a plain number (see ``plain_number``); ``None`` as it is."""
    return None if value is None else plain_number(value)


def _plain_timeout(value: float | HTTPTimeout) -> float | HTTPTimeout:
    """Seconds as a plain number (see ``plain_number``); anything else as it is."""
    return plain_number(value) if isinstance(value, int | float) else value


def _library_of(value: object, kind: str) -> object:
    from ._senders._httpx import library_of  # noqa: PLC0415 - the senders import this module

    return library_of(value, kind)


def _httpx_api(kind: str, what: str) -> Callable[[object, attrs.Attribute[Any], object], None]:
    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is not None and _library_of(value, kind) is None:
            raise TypeError(
                f"{attribute.name} must be an httpx.{kind} or httpx2.{kind}{what}, "
                f"got {type(value).__module__}.{type(value).__qualname__}"
            )

    return check


def _instance_of(cls: type, what: str) -> Callable[[object, attrs.Attribute[Any], object], None]:
    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is not None and not isinstance(value, cls):
            raise TypeError(f"{attribute.name} must be {what}, got {type(value).__name__}")

    return check


def _check_callback(_: object, __: object, value: Any) -> None:  # noqa: ANN401 - checked here
    if value is not None and not callable(value):
        raise TypeError(f"on_event must be callable, got {type(value).__name__}")


def _check_proxy(_: object, __: object, value: Any) -> None:  # noqa: ANN401 - checked here
    if value is None:
        return
    if not isinstance(value, str | httpx.URL):
        raise TypeError(f"proxy must be a URL (str), got {type(value).__name__}")
    # Never echo the URL, nor the parser's message: a proxy URL often carries a password,
    # and a `#`, `?` or `/` in one makes the parser quote its start ("Invalid port: 'pa'").
    try:
        url = httpx.URL(str(value))
    except httpx.InvalidURL:
        raise ValueError(
            "proxy is not a valid URL (percent-encode any of : / ? # @ in its user name "
            "and password)"
        ) from None
    if url.scheme not in {"http", "https"} or not url.host:
        raise ValueError("proxy must be an http:// or https:// URL with a host")


def _shown_url(url: object) -> str:
    """*url* for a repr: its user info (often a password) left out."""
    if url is None:
        return "None"
    text = str(url)
    scheme, separator, rest = text.partition("://")
    host, slash, path = rest.partition("/")
    if separator and "@" in host:
        text = f"{scheme}://[redacted]@{host.rpartition('@')[2]}{slash}{path}"
    return repr(text)


def _check_verify(_: object, __: object, value: object) -> None:
    if isinstance(value, bool | ssl.SSLContext):
        return
    if not isinstance(value, str):
        raise TypeError(
            f"verify must be True, False, a CA bundle path or an ssl.SSLContext, "
            f"got {type(value).__name__}"
        )
    if not os.path.exists(value):  # noqa: PTH110 - ssl takes str paths too
        raise ValueError(f"verify names a CA bundle that does not exist: {value!r}")


def _check_throttle(_: object, __: object, value: Any) -> None:  # noqa: ANN401 - checked here
    if not isinstance(value, Throttle | bool):
        raise TypeError(f"throttle must be a Throttle, None or False, got {type(value).__name__}")


def _backoff_or_default(value: Backoff | None) -> Backoff:
    """``None``: the default backoff."""
    return Backoff() if value is None else value


def _throttle_or_default(value: Throttle | Literal[False] | None) -> Throttle | bool:
    """``None``: a ``Throttle`` of the client's own (``True``); ``False``: none."""
    return True if value is None else value


@attrs.frozen(kw_only=True)
class ClientOptions:
    """Every option of one client: the one place each is declared, defaulted and checked.

    Each field's default is the default of ``AsyncInkit``'s argument of the same name,
    and a converter turns a ``None`` that stands for something into it (the
    environment's token and root, the default ``Backoff``, a ``Throttle`` of the
    client's own); its metadata holds its ``OptionScope``. Validated when the record is
    built, and again by ``attrs.evolve`` for a variant.
    """

    api_token: str = attrs.field(
        default=None, converter=token_from, repr=False, validator=_check_token, metadata=_CONNECTION
    )
    base_url: str = attrs.field(
        default=None, converter=base_url_from, validator=_check_base_url, metadata=_CONNECTION
    )
    timeout: float | HTTPTimeout = attrs.field(
        default=DEFAULT_TIMEOUT,
        converter=_plain_timeout,
        validator=_check_timeout,
        metadata=_PER_CALL,
    )
    deadline: float | None = attrs.field(
        default=None, converter=_plain_deadline, validator=_check_deadline, metadata=_PER_CALL
    )
    """Seconds each call may take in all (waits, attempts, sleeps); ``None``: no bound."""
    max_retries: int = attrs.field(
        default=DEFAULT_MAX_RETRIES,
        converter=plain_int,
        validator=int_field(minimum=0),
        metadata=_PER_CALL,
    )
    max_concurrency: int = attrs.field(
        default=DEFAULT_MAX_CONCURRENCY,
        converter=plain_int,
        validator=int_field(minimum=1),
        metadata=_SHARED,
    )
    max_retry_after: float = attrs.field(
        default=DEFAULT_MAX_RETRY_AFTER,
        converter=plain_number,
        validator=number_field(what="a number of seconds"),
        metadata=_PER_CALL,
    )
    backoff: Backoff = attrs.field(
        default=None,
        converter=_backoff_or_default,
        validator=_instance_of(Backoff, "a Backoff"),
        metadata=_PER_CALL,
    )
    on_event: EventCallback | None = attrs.field(
        default=None, validator=_check_callback, metadata=_PER_CALL
    )
    default_headers: DefaultHeaders = attrs.field(
        default=None, converter=headers_from, metadata=_PER_CALL
    )
    """Headers every request carries, checked (``_headers.py``); the values never shown."""
    throttle: Throttle | bool = attrs.field(
        default=None, converter=_throttle_or_default, validator=_check_throttle, metadata=_SHARED
    )
    """A ``Throttle``; ``True``: a default one; ``False``: none (only ``Retry-After`` pauses)."""
    coalesce: bool = attrs.field(
        default=True, validator=attrs.validators.instance_of(bool), metadata=_SHARED
    )
    """Whether identical lookups under way at the same moment share one request."""
    cache: BatchCache | None = attrs.field(
        default=None, validator=_instance_of(BatchCache, "a BatchCache"), metadata=_SHARED
    )
    keep_responses: bool = attrs.field(
        default=False, validator=attrs.validators.instance_of(bool), metadata=_SHARED
    )
    """Whether each record remembers the 2xx it was made from (``response_of``).

    Shared, not per call: a record is shared by every caller of a coalesced lookup and
    by the cache, whichever variant fetched it, so what ``response_of`` says of it
    cannot depend on the variant that asks."""
    proxy: str | httpx.URL | None = attrs.field(
        default=None, validator=_check_proxy, repr=_shown_url, metadata=_CONNECTION
    )
    verify: bool | str | ssl.SSLContext = attrs.field(
        default=True, validator=_check_verify, metadata=_CONNECTION
    )
    trust_env: bool = attrs.field(
        default=True, validator=attrs.validators.instance_of(bool), metadata=_CONNECTION
    )
    http_client: AsyncHTTPClient | None = attrs.field(
        default=None, validator=_httpx_api("AsyncClient", ""), metadata=_CONNECTION
    )
    transport: AsyncHTTPTransport | None = attrs.field(
        default=None,
        validator=_httpx_api("AsyncBaseTransport", " (such as MockTransport)"),
        metadata=_CONNECTION,
    )

    def __attrs_post_init__(self) -> None:
        """Refuse two ways of sending at once, and network options nothing would apply."""
        if self.http_client is not None and self.transport is not None:
            raise ValueError("pass http_client or transport, not both")
        own = "http_client" if self.http_client is not None else "transport"
        if (self.http_client or self.transport) and (
            self.proxy is not None or self.verify is not True
        ):
            raise ValueError(
                f"proxy= and verify= configure the client's own connections; with {own}= "
                f"set them on the {own} instead"
            )

    @property
    def adaptive(self) -> bool:
        """Whether flow control is on (the throttle paces 429 retries, not the backoff)."""
        return self.throttle is not False

    @property
    def root(self) -> str:
        """The API root without a trailing slash: requests go to ``root + path``."""
        return self.base_url.rstrip("/")

    @property
    def attempt_deadline(self) -> float | None:
        """Seconds one attempt may take end to end; ``None`` with per-phase timeouts."""
        return float(self.timeout) if isinstance(self.timeout, int | float) else None

    @property
    def timeouts(self) -> Timeouts:
        """The per-phase timeouts of every attempt.

        Seconds (``timeout=30``) bound the whole attempt (``attempt_deadline``); connecting gets
        at most 5 of them, and no other phase needs a timer of its own. An httpx or
        httpx2 ``Timeout`` gives each phase exactly as it says.
        """
        if isinstance(self.timeout, int | float):
            return Timeouts(connect=min(float(self.timeout), DEFAULT_CONNECT_TIMEOUT))
        return Timeouts(**self.timeout.as_dict())


def evolved(options: ClientOptions, changes: VariantArguments) -> ClientOptions:
    """*options* with the per-call *changes* of ``with_options``, checked as at construction.

    Each option given replaces the one in *options*, but ``default_headers``: those
    given are added to the client's (a name given again replaces its value), and
    ``None`` removes them all (``merged_headers``).
    """
    if "default_headers" in changes:
        given = changes["default_headers"]
        changes = {**changes, "default_headers": merged_headers(options.default_headers, given)}
    return attrs.evolve(options, **changes)


def _options_in(*scopes: OptionScope) -> tuple[str, ...]:
    return tuple(
        field.name
        for field in attrs.fields(ClientOptions)
        if field.metadata[OPTION_SCOPE] in scopes
    )


#: The options ``with_options`` may change, in declaration order (``VariantArguments``).
PER_CALL_OPTIONS: Final = _options_in(OptionScope.PER_CALL)

#: The options ``FakeInkit.client`` forwards to ``AsyncInkit`` (``OptionArguments``):
#: every one but those that say where requests go and how, which the fake sets itself.
FORWARDED_OPTIONS: Final = _options_in(OptionScope.PER_CALL, OptionScope.SHARED)
