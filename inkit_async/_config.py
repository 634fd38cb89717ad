"""The client's options as one frozen value, checked in one place.

``ClientOptions`` holds the options exactly as the user gave them (``timeout=30`` stays
``30``, an ``httpx.Timeout`` stays that object); what the engine needs from them, such
as the per-attempt deadline, is derived by properties. ``AsyncInkit.with_options``
builds its variant with ``attrs.evolve``, so every option round-trips and every
change goes through the same validators as the constructor's arguments.
"""

from __future__ import annotations

import math
import os
import ssl
from typing import TYPE_CHECKING, Any, Final, Literal, TypedDict
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
from ._retry import Backoff
from ._throttle import Throttle
from ._wire import Timeouts

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from ._events import EventCallback
    from ._protocols import AsyncHTTPClient, AsyncHTTPTransport, HTTPTimeout

__all__ = [
    "ClientOptions",
    "OptionArguments",
    "VariantArguments",
    "base_url_from",
    "client_secrets",
    "environment_proxy_urls",
    "token_from",
]

#: The visible ASCII range: what an HTTP header value can carry unchanged.
_TOKEN_CHARACTERS: Final = frozenset(map(chr, range(0x21, 0x7F)))


class VariantArguments(TypedDict, total=False):
    """The options ``with_options`` may change: the per-call ones."""

    timeout: float | HTTPTimeout
    max_retries: int
    max_retry_after: float
    backoff: Backoff
    on_event: EventCallback | None


class OptionArguments(TypedDict, total=False):
    """The keyword options of ``AsyncInkit`` that ``FakeInkit.client`` forwards."""

    timeout: float | HTTPTimeout
    max_retries: int
    max_concurrency: int
    max_retry_after: float
    backoff: Backoff | None
    on_event: EventCallback | None
    throttle: Throttle | Literal[False] | None
    coalesce: bool
    cache: BatchCache | None


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


def _check_seconds(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


def _check_timeout(_: object, __: object, timeout: object) -> None:
    if _library_of(timeout, "Timeout") is not None:
        return
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        # Say that a Timeout is welcome too: a look-alike of another library's is refused.
        raise TypeError(
            "timeout must be a number of seconds, an httpx.Timeout or an httpx2.Timeout, "
            f"got {type(timeout).__module__}.{type(timeout).__qualname__}"
        )
    _check_seconds("timeout", timeout)
    if timeout == 0:
        raise ValueError("timeout must be > 0")


def _non_negative_seconds(_: object, attribute: attrs.Attribute[float], value: object) -> None:
    _check_seconds(attribute.name, value)


def _at_least(minimum: int) -> Callable[[object, attrs.Attribute[int], object], None]:
    def check(_: object, attribute: attrs.Attribute[int], value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{attribute.name} must be an int, got {type(value).__name__}")
        if value < minimum:
            raise ValueError(f"{attribute.name} must be >= {minimum}, got {value}")

    return check


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


def _check_throttle(_: object, __: object, value: object) -> None:
    if not isinstance(value, Throttle | bool):
        raise TypeError(f"throttle must be a Throttle, None or False, got {type(value).__name__}")


@attrs.frozen(kw_only=True)
class ClientOptions:
    """Every option of one client, as given; validated when the record is built."""

    api_token: str = attrs.field(repr=False, validator=_check_token)
    base_url: str = attrs.field(validator=_check_base_url)
    timeout: float | HTTPTimeout = attrs.field(default=DEFAULT_TIMEOUT, validator=_check_timeout)
    max_retries: int = attrs.field(default=DEFAULT_MAX_RETRIES, validator=_at_least(0))
    max_concurrency: int = attrs.field(default=DEFAULT_MAX_CONCURRENCY, validator=_at_least(1))
    max_retry_after: float = attrs.field(
        default=DEFAULT_MAX_RETRY_AFTER, validator=_non_negative_seconds
    )
    backoff: Backoff = attrs.field(factory=Backoff, validator=_instance_of(Backoff, "a Backoff"))
    http_client: AsyncHTTPClient | None = attrs.field(
        default=None, validator=_httpx_api("AsyncClient", "")
    )
    transport: AsyncHTTPTransport | None = attrs.field(
        default=None, validator=_httpx_api("AsyncBaseTransport", " (such as MockTransport)")
    )
    on_event: EventCallback | None = attrs.field(default=None, validator=_check_callback)
    proxy: str | httpx.URL | None = attrs.field(
        default=None, validator=_check_proxy, repr=_shown_url
    )
    verify: bool | str | ssl.SSLContext = attrs.field(default=True, validator=_check_verify)
    trust_env: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))
    coalesce: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))
    cache: BatchCache | None = attrs.field(
        default=None, validator=_instance_of(BatchCache, "a BatchCache")
    )
    """Whether identical lookups under way at the same moment share one request."""
    throttle: Throttle | bool = attrs.field(default=True, validator=_check_throttle)
    """A ``Throttle``; ``True``: a default one; ``False``: none (only ``Retry-After`` pauses)."""

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
    def deadline(self) -> float | None:
        """Seconds one attempt may take end to end; ``None`` with per-phase timeouts."""
        return float(self.timeout) if isinstance(self.timeout, int | float) else None

    @property
    def timeouts(self) -> Timeouts:
        """The per-phase timeouts of every attempt.

        Seconds (``timeout=30``) bound the whole attempt (``deadline``); connecting gets
        at most 5 of them, and no other phase needs a timer of its own. An httpx or
        httpx2 ``Timeout`` gives each phase exactly as it says.
        """
        if isinstance(self.timeout, int | float):
            return Timeouts(connect=min(float(self.timeout), DEFAULT_CONNECT_TIMEOUT))
        return Timeouts(**self.timeout.as_dict())
