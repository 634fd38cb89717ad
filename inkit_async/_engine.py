"""The request engine: every API call goes through ``Engine.request``.

An ``Engine`` is one client's view of the shared machinery: its options (a
``ClientOptions``) over an ``EngineState`` that a client shares with its
``with_options`` variants (the HTTP client, the concurrency slots, the throttle, the
requests under way, the cache, the event loop it is bound to). One call goes:

1. identical lookups under way share one request (``_coalesce.py``), if asked, among
   the callers whose per-call options are equal (one ``Coalescer`` per set of them);
2. take a client-wide concurrency slot (waiting here never counts against a pool
   timeout, because the pool is sized to the slots);
3. inside it, wait for a permit from the throttle (``_throttle.py``): its sending rate,
   its pauses and the probe after each pause, so that they apply to everything not
   yet sent;
4. send it under the per-attempt deadline, reading the body up to the size limit: a
   plain GET straight through the SDK's own aiohttp transport (no httpx objects unless
   the answer is an error), anything else as an ``httpx.Request`` built once;
5. tell the throttle what the server said;
6. a 2xx: decode the JSON and cast it to the caller's record;
7. anything else: give the slot back, ask ``decide`` (``_policy.py``) what it means,
   and carry that out: report pauses and rate cuts, spend the retry budget, report
   the retry as data, sleep, go to 2; or raise the error it built.
"""

from __future__ import annotations

import asyncio
import json
import logging
import platform
import time
import warnings
import weakref
from typing import TYPE_CHECKING, Any, Final, NamedTuple, TypeVar

import attrs
import httpx

from ._body import read_limited
from ._cache import CacheScope
from ._coalesce import Coalescer
from ._config import VariantArguments, client_secrets
from ._constants import TOKEN_HEADER
from ._converter import ShapeError
from ._events import PauseEvent, RateEvent, RetryEvent
from ._exceptions import (
    SECRETS_EXTENSION,
    APITimeoutError,
    DeadlineExceeded,
    InkitError,
    Secrets,
    failure_name,
    not_json_error,
    scrub_failure,
    shape_error,
)
from ._policy import Answer, Attempt, Fail, Failure, Outcome, Retry, decide
from ._throttle import Signal, Throttle, ThrottleTimeoutError, Unthrottled, signal_of
from ._version import __version__

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Hashable, Mapping

    from ._cache import BatchCache
    from ._config import ClientOptions
    from ._events import ClientEvent
    from ._throttle import Change, FlowControl, Permit
    from ._tracing import AttemptSpan, Telemetry
    from ._transport import AiohttpTransport, Wire

__all__ = ["Engine"]

T = TypeVar("T")

logger: Final = logging.getLogger("inkit_async")

_USER_AGENT: Final = (
    f"inkit-async/{__version__} httpx/{httpx.__version__} "
    f"{platform.python_implementation()}/{platform.python_version()}"
)
_CLOSED: Final = "The AsyncInkit client is closed; create a new one."
_UNCLOSED: Final = (
    "An AsyncInkit client was garbage-collected without being closed, leaving its "
    "connections open: close it with `await client.aclose()`, or use "
    "`async with AsyncInkit(...) as client:`"
)


class EngineState:
    """What a client shares with its ``with_options`` variants."""

    __slots__ = (
        "cache",
        "closed",
        "coalescers",
        "flow",
        "http",
        "lean",
        "loop",
        "owns_http",
        "secrets",
        "slots",
        "telemetry",
    )

    def __init__(self, options: ClientOptions) -> None:
        """Set up the pool (unless the caller brought an ``http_client``), slots, throttle."""
        self.owns_http = options.http_client is None
        # Every credential of the client, for its errors to mask; its requests carry it.
        self.secrets, self.http = _connections(options)
        # The SDK's own aiohttp transport, which the lean path talks to directly (not a
        # caller's `transport=`, nor a caller's client).
        self.lean: type[AiohttpTransport] | None = None
        if self.owns_http and options.transport is None:
            from ._transport import AiohttpTransport  # noqa: PLC0415 - imported by now

            self.lean = AiohttpTransport
        self.slots = asyncio.Semaphore(options.max_concurrency)
        throttle = options.throttle
        self.flow: FlowControl = (
            throttle
            if isinstance(throttle, Throttle)
            else Throttle()
            if throttle
            else Unthrottled()
        )
        if isinstance(self.flow, Throttle):
            self.flow.bind(options.api_token)  # a RedisThrottle names its keys by it
        # One Coalescer per set of per-call options, alive while an engine with those
        # options (or a request under way) is: see `coalescer_for`.
        self.coalescers: weakref.WeakValueDictionary[Hashable, Coalescer] | None = (
            weakref.WeakValueDictionary() if options.coalesce else None
        )
        # The client's part of a shared cache, its owner digest made once, here: a
        # client's root, token and HTTP client cannot change (variants change per-call
        # options only).
        self.cache = (
            CacheScope(
                options.cache,
                options.root,
                options.api_token,
                route=options.http_client or options.transport,
            )
            if options.cache is not None
            else None
        )
        self.telemetry = telemetry_for(options.root)
        self.closed = False
        self.loop: asyncio.AbstractEventLoop | None = None

    def __del__(self) -> None:
        # As the stdlib does for files: a client that was used and is dropped without being
        # closed gets one ResourceWarning (shown with `python -X dev` or `-W default`).
        # `loop` is set last in __init__, which may have failed before (a bad proxy variable).
        if getattr(self, "loop", None) is not None and self.owns_http and not self.closed:
            warnings.warn(_UNCLOSED, ResourceWarning, stacklevel=1, source=self)

    def bind(self) -> None:
        """Tie the state to the running event loop on first use; refuse any other loop."""
        loop = asyncio.get_running_loop()
        if self.loop is None:
            self.loop = loop
        elif self.loop is not loop:
            raise InkitError(
                "This AsyncInkit client was first used in another event loop; its connections "
                "belong to that loop. Create one client per event loop (for example, inside "
                "the coroutine you pass to asyncio.run)."
            )

    def coalescer_for(self, options: ClientOptions) -> Coalescer | None:
        """The requests under way that a caller with *options* may join; ``None``: none.

        Only callers whose per-call options are all equal share a request, so a shared
        request is sent with each one's own timeout, retries, backoff, ``max_retry_after``
        and ``on_event``: no caller's options decide another's outcome. Called once per
        engine (a client or a variant), never per lookup.
        """
        coalescers = self.coalescers
        if coalescers is None:
            return None
        key = sharing_key(options)
        coalescer = coalescers.get(key)
        if coalescer is None:
            coalescer = coalescers[key] = Coalescer()
        return coalescer

    async def send(self, request: httpx.Request) -> httpx.Response:
        """Send *request* and return the response with its body still unread."""
        if self.owns_http:
            # The lean path: straight to the transport httpx would pick for this URL
            # (ours, a proxy's from the environment, or respx's when it patches
            # `_transport_for_url`), skipping the auth, redirect, cookie and hook layers
            # that the SDK's own client never configures. They cost ~60 us a request.
            transport = self.http._transport_for_url(request.url)  # noqa: SLF001  # pyright: ignore[reportPrivateUsage] - httpx's, guarded by tests/test_transport.py
            response = await transport.handle_async_request(request)
            response.request = request
            return response
        # Never follow a redirect, whatever the caller's client is set to: the token and
        # the body would go wherever the Location header says.
        return await self.http.send(request, stream=True, follow_redirects=False)


#: The options a variant may change (``with_options``), sorted: what ``sharing_key`` reads.
#: Every other option is the same for a client and all its variants by construction.
_PER_CALL_OPTIONS: Final = tuple(sorted(VariantArguments.__optional_keys__))


def sharing_key(options: ClientOptions) -> Hashable:
    """What must be equal for two callers of one client to share a request.

    Each per-call option, by value: an ``httpx.Timeout`` by its phases, anything else
    that cannot be hashed (an ``on_event`` callable object that is a list, say) by
    identity, which is stable while an engine holding it lives.
    """
    parts: list[object] = []
    for name in _PER_CALL_OPTIONS:
        value: object = getattr(options, name)
        if isinstance(value, httpx.Timeout):
            value = ("httpx.Timeout", tuple(sorted(value.as_dict().items())))
        else:
            try:
                hash(value)
            except TypeError:
                value = ("id", id(value))
        parts.append(value)
    return tuple(parts)


def telemetry_for(root: str) -> Telemetry | None:
    """OpenTelemetry for a client of the API at *root*; ``None`` without the ``otel`` extra."""
    try:
        from ._tracing import Telemetry  # noqa: PLC0415 - only with opentelemetry-api
    except ImportError:
        return None
    return Telemetry(root)


def _connections(options: ClientOptions) -> tuple[Secrets, httpx.AsyncClient]:
    """The client's credentials and the httpx client it sends through.

    The proxies are read once, for both: the credentials masked are those of the
    proxies the connections use.
    """
    if options.http_client is not None:
        return client_secrets(options), options.http_client
    # Imported here: aiohttp is slow to import, and only clients that use it pay.
    from ._transport import build_http_client, proxy_mounts  # noqa: PLC0415

    if options.transport is not None:  # a caller's transport: its proxies are its own
        return client_secrets(options), build_http_client(options, {})
    proxies = proxy_mounts(options)
    return client_secrets(options, proxies.values()), build_http_client(options, proxies)


class Engine:
    """Sends API calls for one client (or one ``with_options`` variant of it)."""

    __slots__ = (
        "_closed",
        "_coalescer",
        "_deadline",
        "_headers",
        "_lean_timeout",
        "_owner",
        "_root_url",
        "_state",
        "_timeout",
        "options",
    )

    options: ClientOptions
    """The options this engine sends with."""

    def __init__(self, options: ClientOptions, state: EngineState | None = None) -> None:
        """Send with *options*; over *state* shared with a parent, or over a new one."""
        self.options = options
        self._owner = state is None
        self._state = EngineState(options) if state is None else state
        self._closed = False
        # Derived once, here: the hot path reads plain attributes.
        self._deadline = options.deadline
        self._timeout = options.httpx_timeout
        self._headers = {
            TOKEN_HEADER: options.api_token,
            "Accept": "application/json",
            "Accept-Encoding": "gzip, deflate",
            "User-Agent": _USER_AGENT,
        }
        # For the lean path: where httpx would route a request (every path goes to the
        # same host, so the root decides), and aiohttp's form of the timeouts.
        self._root_url = httpx.URL(options.root)
        self._lean_timeout: Any = None
        # The requests under way this engine's callers may join: those of the engines
        # (of this client) whose per-call options equal these.
        self._coalescer = self._state.coalescer_for(options)

    def variant(self, changes: VariantArguments) -> Engine:
        """An engine with some per-call options changed, over this engine's shared state."""
        return Engine(attrs.evolve(self.options, **changes), self._state)

    @property
    def cache(self) -> BatchCache | None:
        """The shared cache of finished batches, or ``None``."""
        scope = self._state.cache
        return None if scope is None else scope.cache

    @property
    def cache_scope(self) -> CacheScope | None:
        """This client's part of the shared cache (keyed by its root and token), or ``None``."""
        return self._state.cache

    @property
    def throttle(self) -> Throttle | None:
        """The shared throttle, or ``None`` when flow control is off."""
        flow = self._state.flow
        return flow if isinstance(flow, Throttle) else None

    @property
    def is_closed(self) -> bool:
        """Whether this engine, or the one that owns its state, was closed."""
        return self._closed or self._state.closed

    async def aclose(self) -> None:
        """Close this engine; the owner also closes the shared pool (if it created it).

        Raises:
            InkitError: The owner is closed from another event loop while its loop runs.
        """
        state = self._state
        if self._owner and not state.closed and state.owns_http:
            loop = state.loop
            if loop is not None and not loop.is_closed() and loop is not asyncio.get_running_loop():
                raise InkitError(
                    "aclose() was called from another event loop than the one this client "
                    "runs in; its connections belong to that loop, so close it there."
                )
        self._closed = True
        if not self._owner or state.closed:
            return
        state.closed = True
        if state.owns_http:
            await state.http.aclose()

    async def request(
        self,
        method: str,
        path: str,
        cast: Callable[[Any], T],
        *,
        params: dict[str, str | int] | None = None,
        body: object = None,
        may_repeat: bool = True,
        shared: bool = False,
        operation: str = "",
        attributes: Mapping[str, str | int] | None = None,
    ) -> T:
        """Send one API call, with retries, and return ``cast(json_of_the_answer)``.

        Args:
            method: ``GET`` or ``POST``.
            path: Relative to ``base_url``, starting with ``/``, already percent-encoded.
            cast: Builds the result from the decoded JSON; raises ``ShapeError`` when
                the JSON does not fit (the call then raises
                ``APIResponseValidationError``).
            params: The query string.
            body: A JSON-serialisable request body.
            may_repeat: Whether the call may safely reach the server twice. ``False``
                (a create) retries only when the request certainly was not received.
            shared: Whether identical calls under way at the same moment (same path
                and params; only GETs ask) share one request: calls from this client
                or any of its variants whose per-call options equal this engine's
                (``coalescer_for``), so the request is sent with every caller's own
                options. Off when the client was made with ``coalesce=False``.
            operation: The call's name in traces (``batch.get``), for the span
                OpenTelemetry records for it (``_tracing.py``), if any.
            attributes: That span's own attributes (``inkit.batch.id``).

        Raises:
            InkitError: The client is closed, or is used from another event loop; or
                any error of the exception tree, once the retry policy gives up.
        """
        if self.is_closed:
            raise InkitError(_CLOSED)
        state = self._state
        state.bind()
        coalescer = self._coalescer
        if shared and coalescer is not None:
            key = (path, tuple(sorted(params.items()))) if params else path
            work = coalescer.run(key, self._send, method, path, cast, params, body, may_repeat)
        else:
            work = self._send(method, path, cast, params, body, may_repeat)
        telemetry = state.telemetry
        if telemetry is None or telemetry.tracer() is None:
            return await work
        return await telemetry.traced(operation or method, attributes or {}, work)

    async def traced(
        self, operation: str, attributes: Mapping[str, str | int], work: Awaitable[T]
    ) -> T:
        """Await *work* as one public call in traces (``batch.get_many``), if tracing is on."""
        telemetry = self._state.telemetry
        if telemetry is None:
            return await work
        return await telemetry.traced(operation, attributes, work)

    async def _send(  # noqa: PLR0917 - positional, so that a shared call passes them as they are
        self,
        method: str,
        path: str,
        cast: Callable[[Any], T],
        params: dict[str, str | int] | None,
        body: object,
        may_repeat: bool,  # noqa: FBT001 - see above
    ) -> T:
        state = self._state
        flow = state.flow
        request: httpx.Request | None = None
        last_error: InkitError | None = None
        retries = 0
        waited = 0.0  # seconds this call has waited in the throttle, all attempts together
        # Plain GETs through the SDK's own transport skip httpx's Request and Response.
        lean = state.lean if method == "GET" and params is None and body is None else None
        while True:
            async with state.slots:
                # The permit is asked for inside the slot, so it goes only to a request
                # that leaves at once: a cut or pause applies to everything not yet sent.
                permit, waited = await self._permit(last_error, method, path, waited)
                try:
                    self._check_open()
                    started = time.perf_counter()  # the attempt's own time, not its queueing
                    # Built inside the slot: a 10,000-way gather then builds requests as
                    # slots free up, instead of all of them in one loop iteration up front
                    # (which stalled the event loop and held every request in memory).
                    outcome, request = await self._attempt_once(
                        method, path, params, body, request, lean=lean, retries=retries
                    )
                except BaseException:
                    flow.cancel(permit)
                    raise
            self._log_attempt(method, path, retries, outcome, started)
            if type(outcome) is _Fetched:
                flow.release(permit, Signal.OK)
                return self._cast(method, path, outcome.content, cast, outcome.wire)
            if isinstance(outcome, Answer) and outcome.content is not None:
                response = outcome.response
                if 200 <= response.status_code < 300:
                    flow.release(permit, Signal.OK)
                    return self._cast(method, path, outcome.content, cast, response)
            # The slot was given back above: a caller backing off holds nothing others need.
            attempt = Attempt(method=method, path=path, retries=retries, may_repeat=may_repeat)
            retry = self._settle(permit, outcome, attempt)  # type: ignore[arg-type]  # _Fetched returned above
            last_error = retry.error
            retries += 1
            self._report(
                RetryEvent(
                    method=method,
                    path=path,
                    attempt=retries,
                    delay=retry.delay,
                    reason=retry.reason,
                    status_code=retry.status_code,
                    exception=retry.exception,
                )
            )
            await asyncio.sleep(retry.delay)

    async def _attempt_once(
        self,
        method: str,
        path: str,
        params: dict[str, str | int] | None,
        body: object,
        request: httpx.Request | None,
        *,
        lean: type[AiohttpTransport] | None,
        retries: int,
    ) -> tuple[Outcome | _Fetched, httpx.Request | None]:
        """One attempt, by the lean path or the general one, in its span if traced."""
        state = self._state
        span = None
        try:
            transport = (
                state.http._transport_for_url(self._root_url)  # noqa: SLF001  # pyright: ignore[reportPrivateUsage] - see EngineState.send
                if lean is not None
                else None
            )
            if lean is not None and isinstance(transport, lean):
                if state.telemetry is not None:
                    span = state.telemetry.attempt(method, self.options.root + path, retries)
                outcome = await self._attempt_lean(transport, path, span)
            else:
                if request is None:
                    request = self._build(method, path, params, body)
                if state.telemetry is not None:
                    span = state.telemetry.attempt(method, str(request.url), retries)
                    if span is not None:
                        request.headers.update(span.headers())
                outcome = await self._attempt(request)
        except BaseException as exc:
            if span is not None:
                span.end(None, type(exc).__name__)  # cancelled, or closed under it
            raise
        if span is not None:
            _end_span(span, outcome)
        return outcome, request

    def _check_open(self) -> None:
        if self.is_closed:
            raise InkitError(_CLOSED)

    async def _permit(
        self, last_error: InkitError | None, method: str, path: str, waited: float
    ) -> tuple[Permit, float]:
        """Wait for the throttle's leave to send; give up as it says (see ``Throttle``).

        A call's waits add up to the throttle's ``max_wait`` at most, over all its
        attempts: the throttle bounds each wait, and a retry waits only for what is left,
        so a server that refuses everything fails a call within ``max_wait`` plus the time
        of its attempts. Returns the permit and the call's waiting so far.
        """
        state = self._state
        flow = state.flow
        loop = asyncio.get_running_loop()
        left = flow.max_wait - waited if waited > 0.0 and isinstance(flow, Throttle) else None
        if left is not None and left <= 0.0:
            raise last_error or self._gave_up(method, path)
        asked = loop.time()
        try:
            if left is None:
                permit = await flow.acquire()
            else:
                async with asyncio.timeout(left):
                    permit = await flow.acquire()
        except (ThrottleTimeoutError, TimeoutError):
            raise last_error or self._gave_up(method, path) from None
        now_waited = loop.time() - asked
        telemetry = state.telemetry
        if telemetry is not None and now_waited > _NOTABLE_WAIT:
            telemetry.throttle_wait(now_waited)
        return permit, waited + now_waited

    def _settle(self, permit: Permit, outcome: Outcome, attempt: Attempt) -> Retry:
        """Decide on a non-2xx outcome, tell the throttle, report; raise or return the retry."""
        flow = self._state.flow
        if isinstance(outcome, Failure):
            status = None
            if self.is_closed:
                flow.cancel(permit)
                raise InkitError(
                    "The client was closed while the request was under way."
                ) from scrub_failure(outcome.error, outcome.request)
        else:
            status = outcome.response.status_code
        decision = decide(outcome, attempt, self.options)
        # A connection error carries its failure, scrubbed (or what stands in for it,
        # see scrub_failure), as its cause; an answer's error has none.
        cause = decision.error.__cause__
        signal = signal_of(status)
        change = flow.release(permit, signal, decision.pause)
        if change is not None:
            self._report_change(change, attempt, status, outcome)
        if isinstance(decision, Fail):
            raise decision.error from cause
        if signal is not Signal.THROTTLED and not flow.allow_retry():
            raise decision.error from cause
        return decision

    def _gave_up(self, method: str, path: str) -> APITimeoutError:
        wait = self._state.flow.max_wait if isinstance(self._state.flow, Throttle) else 0.0
        return APITimeoutError(
            f"{method} {path} gave up after waiting {wait:g} s for the throttle's leave to "
            "send (the API is refusing requests or failing); nothing was sent",
            may_have_reached_server=False,
        )

    def _report_change(
        self, change: Change, attempt: Attempt, status: int | None, outcome: Outcome
    ) -> None:
        """Report a rate cut and a pause that an answer caused."""
        if change.rate is not None:
            self._report(
                RateEvent(
                    method=attempt.method,
                    path=attempt.path,
                    rate=change.rate,
                    previous_rate=change.previous_rate,
                    status_code=status,
                )
            )
        if change.pause:
            what = str(status) if isinstance(outcome, Answer) else failure_name(outcome.error)
            reason = (
                f"{what}: the throttle pauses, then sends one probe"
                if change.outage
                else f"{what} with Retry-After {change.pause:g}"
            )
            self._report(
                PauseEvent(
                    method=attempt.method,
                    path=attempt.path,
                    seconds=change.pause,
                    reason=reason,
                    status_code=status,
                    outage=change.outage,
                )
            )

    def _build(
        self, method: str, path: str, params: dict[str, str | int] | None, body: object
    ) -> httpx.Request:
        """Build the request; a caller's own client merges its defaults into it."""
        url = self.options.root + path
        if self._state.owns_http:
            # The SDK's own client has no default headers, cookies or auth to merge.
            return httpx.Request(
                method,
                url,
                params=params,
                json=body,
                headers=self._headers,
                extensions={
                    "timeout": self._timeout.as_dict(),
                    SECRETS_EXTENSION: self._state.secrets,
                },
            )
        return self._state.http.build_request(
            method,
            url,
            params=params,
            json=body,
            headers=self._headers,
            timeout=self._timeout,
            extensions={SECRETS_EXTENSION: self._state.secrets},
        )

    async def _attempt(self, request: httpx.Request) -> Outcome:
        """Send once under the per-attempt deadline and read the body.

        A transport failure is returned, not raised: the caller decides on a retry after
        it has given its concurrency slot back.
        """
        try:
            async with asyncio.timeout(self._deadline):
                response = await self._state.send(request)
                try:
                    content = await read_limited(response)
                finally:
                    await response.aclose()
        except TimeoutError as exc:
            deadline = DeadlineExceeded()
            deadline.__cause__ = exc
            return Failure(request, deadline)
        except httpx.HTTPError as exc:
            return Failure(request, exc)
        return Answer(response, content)

    async def _attempt_lean(
        self, transport: AiohttpTransport, path: str, span: AttemptSpan | None
    ) -> Outcome | _Fetched:
        """Send a GET straight through the SDK's aiohttp transport, under the deadline.

        A 2xx comes back as ``_Fetched`` without any httpx object; anything else as the
        ``Answer`` or ``Failure`` the retry policy reads, with the httpx objects built now.
        """
        if self._lean_timeout is None:
            timeouts = self._timeout.as_dict()
            if self._deadline is not None:
                # The deadline bounds every phase already: only connecting keeps a limit
                # of its own (a shorter one), so aiohttp arms no timer per read.
                timeouts = {"connect": timeouts.get("connect")}
            self._lean_timeout = transport.timeout_for(timeouts)
        url = _encoded_url(self.options.root + path)
        headers = self._headers if span is None else {**self._headers, **span.headers()}
        try:
            async with asyncio.timeout(self._deadline):
                wire = await transport.fetch(url, headers, self._lean_timeout)
        except TimeoutError as exc:
            deadline = DeadlineExceeded()
            deadline.__cause__ = exc
            return Failure(self._build("GET", path, None, None), deadline)
        except httpx.HTTPError as exc:
            return Failure(self._build("GET", path, None, None), exc)
        if wire.content is not None and 200 <= wire.status < 300:
            return _Fetched(wire)
        return Answer(self._response(path, wire), wire.content)

    def _response(self, path: str, wire: Wire) -> httpx.Response:
        """The httpx response for a lean answer, for the errors that carry one."""
        # The body is decoded already: a kept Content-Encoding would decode it twice.
        headers = [
            (name, value)
            for name, value in wire.raw_headers
            if name.lower() not in {b"content-encoding", b"content-length"}
        ]
        extensions: dict[str, object] = {"http_version": b"HTTP/1.1"}
        if wire.reason:
            extensions["reason_phrase"] = wire.reason.encode("ascii", "replace")
        return httpx.Response(
            wire.status,
            headers=headers,
            content=wire.content or b"",
            request=self._build("GET", path, None, None),
            extensions=extensions,
        )

    def _cast(
        self,
        method: str,
        path: str,
        content: bytes,
        cast: Callable[[Any], T],
        answer: httpx.Response | Wire,
    ) -> T:
        what = f"{method} {path}"
        try:
            data = json.loads(content)
        except (ValueError, RecursionError) as exc:  # not JSON, or nested too deeply
            response = (
                answer if isinstance(answer, httpx.Response) else self._response(path, answer)
            )
            raise not_json_error(what, response, content, exc) from None
        try:
            return cast(data)
        except ShapeError as exc:
            response = (
                answer if isinstance(answer, httpx.Response) else self._response(path, answer)
            )
            raise shape_error(what, response, content, data, exc) from None

    def _report(self, event: ClientEvent) -> None:
        """Log an event with the record attached, and hand it to ``on_event``."""
        extra = {"inkit_event": event}
        match event:
            case RetryEvent():
                logger.info(
                    "Retrying %s %s in %.2f s (retry %d of %d): %s",
                    event.method,
                    event.path,
                    event.delay,
                    event.attempt,
                    self.options.max_retries,
                    event.reason,
                    extra=extra,
                )
            case PauseEvent():
                logger.info(
                    "Pausing every request for %.2f s after %s %s: %s",
                    event.seconds,
                    event.method,
                    event.path,
                    event.reason,
                    extra=extra,
                )
            case RateEvent():
                logger.info(
                    "Sending rate cut to %.1f requests/s after %s %s got %s",
                    event.rate,
                    event.method,
                    event.path,
                    event.status_code or "a transport failure",
                    extra=extra,
                )
        telemetry = self._state.telemetry
        if telemetry is not None:
            telemetry.report(event)
        callback = self.options.on_event
        if callback is not None:
            try:
                callback(event)
            except Exception:
                # A broken metrics hook must not fail the lookup it observes.
                logger.exception("The on_event callback raised; the call goes on")

    def _log_attempt(
        self, method: str, path: str, retries: int, outcome: Outcome | _Fetched, started: float
    ) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            result: int | str
            if isinstance(outcome, _Fetched):
                result = outcome.status
            elif isinstance(outcome, Answer):
                result = outcome.response.status_code
            else:
                result = failure_name(outcome.error)
            elapsed_ms = (time.perf_counter() - started) * 1000
            logger.debug(
                "%s %s -> %s (attempt %d, %.1f ms)",
                method,
                path,
                result,
                retries + 1,
                elapsed_ms,
                extra={
                    "inkit_attempt": retries + 1,
                    "inkit_outcome": result,
                    "inkit_elapsed_ms": elapsed_ms,
                },
            )


#: A wait in the throttle shorter than this is not worth a span event (seconds).
_NOTABLE_WAIT: Final = 0.001


def _end_span(span: AttemptSpan, outcome: Outcome | _Fetched) -> None:
    """End an attempt's span with its status, and ``error.type`` if it failed."""
    if isinstance(outcome, _Fetched):
        span.end(outcome.status, None)
    elif isinstance(outcome, Answer):
        status = outcome.response.status_code
        span.end(status, str(status) if status >= 400 else None)
    else:
        span.end(None, failure_name(outcome.error))


class _Fetched(NamedTuple):
    """A 2xx the lean path read: the body, and the wire answer (for errors, if any)."""

    wire: Wire

    @property
    def content(self) -> bytes:
        """The decoded body."""
        assert self.wire.content is not None  # noqa: S101 - only bodies that were read
        return self.wire.content

    @property
    def status(self) -> int:
        """The 2xx status."""
        return self.wire.status


def _encoded_url(url: str) -> Any:  # noqa: ANN401 - yarl.URL, imported with aiohttp
    import yarl  # noqa: PLC0415 - aiohttp's, loaded with the transport already

    # Ids are percent-encoded already: yarl must not re-quote them.
    return yarl.URL(url, encoded=True)
