"""``AsyncInkit``: the product client, a thin layer over the request engine.

It passes its arguments on to a ``ClientOptions`` record (``_config.py``), which
declares, defaults and checks every option, builds an ``Engine`` over it
(``_engine.py``) and binds the resources to that engine. Everything a request does
happens in the engine.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, Literal, Self, cast

from ._closing import AsyncClosing
from ._config import NOT_GIVEN, ClientOptions, NotGiven, VariantArguments
from ._engine import Engine
from ._log import log_from_env
from ._settings import ClientSettings
from .resources import (
    BatchResource,
    DocumentBatchResource,
    DocumentResource,
    FlowResource,
    FolderResource,
    RenderResource,
    TemplateResource,
)

if TYPE_CHECKING:
    import ssl
    from collections.abc import Mapping

    import httpx

    from ._cache import BatchCache
    from ._events import EventCallback
    from ._protocols import AsyncHTTPClient, AsyncHTTPTransport, HTTPTimeout
    from ._retry import Backoff
    from ._throttle import Throttle

__all__ = ["AsyncInkit"]


class AsyncInkit(AsyncClosing, ClientSettings):
    """An asyncio client for the Inkit API.

    Use one client for the lifetime of your application and share it between tasks:

    ```python
    async with AsyncInkit() as client:
        batch = await client.batch.get("rb_6WtDgF7RGqdS5Uzea9neZJ")
    ```

    Args:
        api_token: Your Inkit API token. Defaults to the ``INKIT_API_TOKEN`` environment
            variable; without either, ``InkitError`` is raised here.
        base_url: The API root, path included. Defaults to ``INKIT_BASE_URL``, then
            ``https://api.inkit.com/v1``. Requests go to ``<base_url>/batch/<id>``.
            A user name or password in it (``https://user:pw@host/v1``) raises
            ``ValueError``, whose message does not show them: the token authenticates.
        timeout: Seconds one attempt may take end to end (default 30; connecting gets at
            most 5 of them). An ``httpx.Timeout`` (or ``httpx2.Timeout``) instead applies
            its per-phase timeouts exactly as given, with no end-to-end deadline. Retries do not
            stretch a single attempt: the longest one call can take against a server
            that never answers is ``(1 + max_retries) * timeout`` plus the backoff
            waits, about 91.5 s with the defaults (3 x 30 s + 0.5 s + 1 s); bound the
            whole call with *deadline*.
        deadline: Seconds each call may take in all (default ``None``: no bound): the
            waits for a concurrency slot and in the throttle, every attempt (one gets
            at most what is left, when that is less than *timeout*), the backoff and
            any ``Retry-After``. A call that cannot finish in time fails as soon as
            that is known (a ``Retry-After`` or backoff that would end after the
            deadline fails at once, without sleeping) with ``DeadlineExceededError``,
            whose ``.wait`` says which wait ran out. Every resource method takes a
            ``deadline=`` of its own for one call.
        max_retries: Retries after the first attempt for connection errors, timeouts and
            the statuses 408, 429, 500, 502, 503 and 504 (default 2; 0 disables).
        max_concurrency: Requests in flight at once across every caller of this client
            (default 100). Further calls wait inside the client; the connection pool the
            client creates is sized to match.
        max_retry_after: Longest ``Retry-After`` in seconds the client waits on (default
            60). A longer one raises ``RateLimitError`` (or the status error) at once.
        backoff: Backoff between retries the server gave no ``Retry-After`` for.
        on_event: Called with a ``RetryEvent`` before each retry, a ``PauseEvent`` when
            the client pauses (a 429's ``Retry-After``, an outage) and a ``RateEvent``
            when the throttle cuts its rate; for metrics and logs. It runs in the event
            loop and should return quickly; an exception it raises is logged, not
            raised.
        default_headers: Headers every request carries (``{"Authorization": "Bearer
            ..."}`` for a gateway in front of the API, a tenant's header). Names must be
            HTTP tokens and values visible ASCII (no CR, LF or NUL), checked here. The
            SDK's own headers cannot be set this way: ``X-Inkit-API-Token`` (never: the
            token comes from *api_token* alone, once), ``Accept``, ``Accept-Encoding``,
            ``Content-Type``, ``Proxy-Authorization`` (put the proxy's credentials in
            *proxy*) and the headers the HTTP library writes (``Host``,
            ``Content-Length``, ...); ``User-Agent`` replaces the SDK's. Every value is
            treated as a credential: never in a repr, a log line or an error (masked as
            the token is), and the option refuses to be pickled.
        throttle: The flow-control policy (see ``Throttle``). By default each client
            has its own, with the defaults; ``False`` switches it off, leaving only the
            pause a 429's ``Retry-After`` asks for.
        coalesce: Whether lookups of the same batch that are under way at the same
            moment, from any task of the client or of its variants with equal per-call
            options, share one request (default ``True``). Each caller gets the same
            record, or an error of the same type with its own body and response; one
            caller's cancellation never stops the request while others wait.
        cache: A ``BatchCache`` of finished batches (default: none): a finished batch
            looked up again within its ``ttl`` is answered without a request. Clients
            may share one; each is answered only with entries of its own ``base_url``
            and token.
        keep_responses: Whether each record the client returns remembers the 2xx it
            was made from (default ``False``): ``inkit_async.response_of(record)`` then
            gives its status, headers (credentials masked, ``Set-Cookie`` left out),
            request id, the attempts the call made and how long the last one took.
            For the client and all its variants (``with_options`` does not take it).
            Memory: each record holds its answer's headers until it is collected.
        proxy: An HTTP proxy for every request (``http://user:pass@proxy:3128``):
            forwarded for ``http://``, tunnelled with CONNECT for ``https://``. Without
            it, the proxy variables httpx honours are honoured (``HTTPS_PROXY``,
            ``HTTP_PROXY``, ``ALL_PROXY``, ``NO_PROXY``, either case) unless
            *trust_env* is false.
        verify: How TLS certificates are checked: ``True`` (the operating system's
            trust store, or ``SSL_CERT_FILE``/``SSL_CERT_DIR`` when set), a CA bundle
            path, an ``ssl.SSLContext``, or ``False`` (no checks; for tests only). A
            certificate that fails verification fails the call at once: retrying
            cannot change it.
        trust_env: Whether to read proxies and ``SSL_CERT_FILE``/``SSL_CERT_DIR`` from
            the environment (default ``True``), when the client is created.
        http_client: An ``httpx.AsyncClient`` or ``httpx2.AsyncClient`` to send
            through instead of the client's own (aiohttp's pool). The caller owns it:
            ``aclose()`` leaves it open, and its pool limits apply instead of
            ``max_concurrency``-sized ones.
        transport: An httpx or httpx2 transport (such as ``httpx.MockTransport``) for a
            client of that library to send through; the client closes it with itself.
            Not together with *http_client*.

    The first client made in a process also applies ``INKIT_LOG`` (``debug``, ``info``
    or ``warning``): the ``inkit_async`` logger's level, and a stderr handler when the
    app configured no logging; any other value is ignored with a ``RuntimeWarning``.

    Raises:
        InkitError: No token was given or found in the environment.
        TypeError: An option has the wrong type.
        ValueError: An option has an impossible value.
    """

    batch: DocumentBatchResource
    """Document batches (``/batch``): get, get_many, list, wait, watch, create."""
    flow_batch: BatchResource
    """Flow batches (``/invoke/batch``): get, get_many, list, wait, watch."""
    render: RenderResource
    """Renders (``/render``): create, get, list, delete, download, stream, download_many."""
    document: DocumentResource
    """Documents in Inkit Storage (``/document``): get, list, delete, download, stream,
    download_many."""
    template: TemplateResource
    """Templates (``/template``): create, get, list."""
    folder: FolderResource
    """Folders (``/folder``): list."""
    flow: FlowResource
    """Flows (``/invoke``): invoke, list_invocations."""

    def __init__(
        self,
        api_token: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float | HTTPTimeout = 30.0,
        deadline: float | None = None,
        max_retries: int = 2,
        max_concurrency: int = 100,
        max_retry_after: float = 60.0,
        backoff: Backoff | None = None,
        on_event: EventCallback | None = None,
        default_headers: Mapping[str, str] | None = None,
        throttle: Throttle | Literal[False] | None = None,
        coalesce: bool = True,
        cache: BatchCache | None = None,
        keep_responses: bool = False,
        proxy: str | httpx.URL | None = None,
        verify: bool | str | ssl.SSLContext = True,
        trust_env: bool = True,
        http_client: AsyncHTTPClient | None = None,
        transport: AsyncHTTPTransport | None = None,
    ) -> None:
        # The defaults are written as values, not as the constants, because the API
        # reference shows a signature as written; tests/unit/test_reference_docs.py holds
        # them to the constants, and tests/unit/test_options.py to the record's.
        # Every parameter is the option of the same name, passed on as given: the record
        # reads the environment, fills in what None stands for and checks every value.
        # tests/test_options.py holds this signature to the record's fields.
        arguments: dict[str, Any] = dict(locals())
        del arguments["self"]
        log_from_env()  # INKIT_LOG, read once per process, where the token and root are
        self._bind(Engine(ClientOptions(**arguments)))

    def _bind(self, engine: Engine) -> None:
        self._engine = engine
        self.batch = DocumentBatchResource(engine, "batch")
        self.flow_batch = BatchResource(engine, "invoke/batch", name="flow_batch")
        self.render = RenderResource(engine)
        self.document = DocumentResource(engine)
        self.template = TemplateResource(engine)
        self.folder = FolderResource(engine)
        self.flow = FlowResource(engine)

    def with_options(
        self,
        *,
        timeout: float | HTTPTimeout | NotGiven = NOT_GIVEN,
        deadline: float | NotGiven | None = NOT_GIVEN,
        max_retries: int | NotGiven = NOT_GIVEN,
        max_retry_after: float | NotGiven = NOT_GIVEN,
        backoff: Backoff | NotGiven | None = NOT_GIVEN,
        on_event: EventCallback | NotGiven | None = NOT_GIVEN,
        default_headers: Mapping[str, str] | NotGiven | None = NOT_GIVEN,
    ) -> Self:
        """Return a client with other per-call options over the same shared resources.

        The variant shares this client's connection pool, concurrency slots, throttle
        and cache: ``client.with_options(timeout=5).batch.get(...)`` is cheap.

        An option you leave out keeps this client's value. An option you pass replaces
        it, with the meaning and the checks it has in ``AsyncInkit(...)``:
        ``on_event=None`` removes the callback, ``deadline=None`` lifts the deadline,
        ``backoff=None`` is the default backoff, and ``timeout``, ``max_retries`` and
        ``max_retry_after`` take no ``None`` (``TypeError``, as there).
        ``default_headers`` adds to this client's headers (one of the same name, in any
        case, replaces its value) and ``default_headers=None`` removes them all, so
        ``client.with_options(default_headers={"X-Trace": "1"}).batch.get(id)`` carries
        one more header for one call; a variant with other headers never shares a
        request under way with this client. ``NOT_GIVEN``,
        the default the signature shows, only marks an option as left out: it is not
        exported and never needs passing (to forward options, forward ``**kwargs``).

        The variant is a shallow copy of this client with its own options: a subclass
        of ``AsyncInkit`` keeps its class, and the attributes its ``__init__`` set.
        Closing the original closes the shared resources; closing the variant never
        does.

        Raises:
            TypeError: An option has the wrong type.
            ValueError: An option has an impossible value.
        """
        arguments: dict[str, Any] = dict(locals())
        del arguments["self"]
        changes = {name: value for name, value in arguments.items() if value is not NOT_GIVEN}
        variant = copy.copy(self)
        variant._bind(self._engine.variant(cast("VariantArguments", changes)))  # noqa: SLF001
        return variant

    # -- lifecycle -----------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the client; calls afterwards raise ``InkitError``.

        Idempotent. Closes the connection pool the client made in the event loop it is
        called from (each loop has its own); the pools of other loops that still run are
        closed when those loops end (``asyncio.run`` returns), and calls there fail too.
        An ``http_client`` you passed in stays open (you own it). Closing a
        ``with_options`` variant closes only the variant: the pools, slots and throttle
        belong to the original client.

        Raises:
            InkitError: The client sends through your ``http_client`` (or a transport of
                yours) and this is another event loop than the one that uses it, while
                that loop still runs.
        """
        await self._engine.aclose()

    @property
    def is_closed(self) -> bool:
        """Whether ``aclose()`` was called on this client (or on its parent)."""
        return self._engine.is_closed

    def __repr__(self) -> str:
        """Describe the client without its token."""
        state = " closed" if self.is_closed else ""
        return (
            f"<AsyncInkit base_url={self.base_url!r} max_retries={self.max_retries}"
            f" max_concurrency={self.max_concurrency}{state}>"
        )
