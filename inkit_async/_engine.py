"""The request engine: every API call goes through ``Engine.request``.

An ``Engine`` is one client's view of the shared machinery: its options (a
``ClientOptions``) over an ``EngineState`` (``_state.py``) that a client shares with
its ``with_options`` variants. It sends, decides and repeats; one call goes:

1. identical lookups under way share one request (``_coalesce.py``), if asked, among
   the callers whose per-call options are equal (one ``Coalescer`` per set of them);
2. slot: take a client-wide concurrency slot (waiting here never counts against a pool
   timeout, because the pool is sized to the slots);
3. permit: inside it, wait for the throttle's leave to send (``_throttle.py``): its
   sending rate, its pauses and the probe after each pause, so that they apply to
   everything not yet sent;
4. send: through the client's sender under the per-attempt deadline (``_wire.py``,
   ``_senders/``): a plain ``Request`` out, a ``Reply`` or a ``TransportFailure``
   back, which ``_outcomes.py`` turns into what the call returns (a 2xx, cast to the
   caller's record; with ``keep_responses``, timed here and remembered as the answer
   behind the record, ``_responses.py``) or what ``decide`` reads;
5. decide: give the slot back, tell the throttle what the server said, and ask
   ``decide`` (``_policy.py``) what an answer that is not a usable 2xx means;
6. observe: tell the observers (``_observe.py``: logging, OpenTelemetry, ``on_event``)
   of the call, each attempt's start and end, the throttle's waits and every event;
7. sleep before a retry and go to 2, or raise the error ``decide`` built.

A download takes the same steps in ``_streaming.py`` (its body streams to the caller,
so its attempt ends at the first piece of body), through the members this class leaves
unhidden for it: ``permit``, ``settle``, ``report``, ``check_open``, ``headers``,
``timeouts``, ``attempt_deadline`` and ``watchers``.

A call with a ``deadline=`` carries a ``CallDeadline`` (``_deadline.py``): the slot, the
permit and each attempt are awaited under it, and a sleep that would end after it fails
the call at once (``DeadlineExceededError``). A call without one carries ``None``.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any, Final, TypeVar
from urllib.parse import urlencode

import attrs

from ._asyncio_only import running_loop
from ._coalesce import Coalescer
from ._config import evolved
from ._deadline import CallDeadline
from ._exceptions import APITimeoutError, InkitError, scrub_failure
from ._fanout import Enqueuer
from ._headers import request_headers
from ._observe import NOTABLE_WAIT, change_events, hooked, retry_event, summary
from ._outcomes import answer_of, cast_reply, failure_of, json_bytes
from ._policy import Attempt, Fail, Failure, Outcome, Retry, decide
from ._state import EngineState, observers_for
from ._throttle import Signal, ThrottleTimeoutError, signal_of
from ._wire import Reply, Request, TransportFailure

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

    from ._config import ClientOptions, VariantArguments
    from ._events import ClientEvent
    from ._observe import AttemptWatch
    from ._throttle import Permit
    from ._wire import Sender

__all__ = ["Engine"]

T = TypeVar("T")

_CLOSED: Final = "The AsyncInkit client is closed; create a new one."
_NO_ATTRIBUTES: Final[Mapping[str, str | int]] = {}


class Engine:
    """Sends API calls for one client (or one ``with_options`` variant of it)."""

    __slots__ = (
        "_call",
        "_closed",
        "_json_headers",
        "_owner",
        "_sharing",
        "_state",
        "attempt_deadline",
        "cache",
        "headers",
        "keep_responses",
        "observers",
        "options",
        "secrets",
        "timeouts",
        "tracers",
        "watchers",
    )

    options: ClientOptions
    """The options this engine sends with."""

    def __init__(self, options: ClientOptions, state: EngineState | None = None) -> None:
        """Send with *options*; over *state* shared with a parent, or over a new one."""
        self.options = options
        self._owner = state is None
        self._state = EngineState(options) if state is None else state
        self.cache = self._state.cache_for(options.default_headers)  # entries by who asks
        self._closed = False
        # Derived once, here: the hot path reads plain attributes.
        self.attempt_deadline = options.attempt_deadline
        self.timeouts = options.timeouts
        self.keep_responses = options.keep_responses  # time each usable answer (_responses.py)
        # The SDK's headers and the caller's; their values join the client's secrets.
        self.headers, self._json_headers, self.secrets = request_headers(
            options, self._state.secrets
        )
        # What the httpx request of an error about an answer is made from (``cast_reply``).
        self._call = Request("GET", options.root, self.headers, None, self.timeouts, self.secrets)
        # Who hears of the calls: the log, the client's shared observers, ``on_event``.
        self.observers = observers_for(options, self._state.observers)
        self.tracers = hooked(self.observers, "traced")  # on the hot path: only those
        self.watchers = hooked(self.observers, "attempt_started")  # that do something
        # The requests under way this engine's callers may join: those of the engines
        # (of this client) whose per-call options equal these, in the caller's loop.
        self._sharing = self._state.sharing_for(options)

    def variant(self, changes: VariantArguments) -> Engine:
        """An engine with some per-call options changed, over this engine's shared state."""
        return Engine(evolved(self.options, changes), self._state)

    @property
    def state(self) -> EngineState:
        """What this engine shares with the client's other engines: its cache, its throttle."""
        return self._state

    @property
    def is_closed(self) -> bool:
        """Whether this engine, or the one that owns its state, was closed."""
        return self._closed or self._state.closed

    async def aclose(self) -> None:
        """Close this engine; the owner also closes the shared state (``EngineState.aclose``).

        Raises:
            InkitError: The owner of a client bound to one loop (its ``http_client`` or
                ``transport``) is closed from another loop while that one runs.
        """
        if self._owner and not self._state.closed:
            running_loop()  # asyncio only: under trio, say so before anything else
            await self._state.aclose()
        self._closed = True

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
        end: float | None,
    ) -> T:
        """Send one API call, with retries, and return ``cast(json_of_the_answer)``.

        Args:
            method: ``GET``, ``POST`` or ``DELETE``.
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
            end: When the call must be done by, on the loop's clock: ``end_of(deadline)``
                for a call's ``deadline=`` (``None`` there: the client's); ``None`` here:
                no deadline. Required, so that no call forgets the client's.

        Raises:
            InkitError: The client is closed, or sends through one loop's HTTP client
                and is used from another loop; or any error of the exception tree, once
                the retry policy gives up.
        """
        if self.is_closed:
            raise InkitError(_CLOSED)
        running_loop()  # asyncio only: under trio, say so before anything else
        local = self._state.local()  # what the client has in this loop, made on first use
        deadline = CallDeadline.of(end, method, path, may_repeat=may_repeat)
        sharing = self._sharing
        work: Awaitable[T]
        if shared and sharing is not None:
            key = (path, tuple(sorted(params.items()))) if params else path
            args = (method, path, cast, params, body, may_repeat)
            work = sharing.coalescer(local).run(key, deadline, self._send, *args)
        else:
            work = self._send(deadline, method, path, cast, params, body, may_repeat)
        for observer in self.tracers:  # the call's span
            work = observer.traced(operation or method, attributes or _NO_ATTRIBUTES, work)
        return await work

    def fan_out(self) -> Enqueuer:
        """Where a fan-out (``get_many``, ``iter_many``) queues its lookups (``_fanout.py``).

        Its lookups are GETs shared as ``request(..., shared=True)`` shares them (with a
        coalescer of the call's own when the client shares nothing, ``coalesce=False``),
        queued in this loop's ``LookupQueue`` and sent through ``_send`` in their turn.
        """
        self.check_open()
        local = self._state.local()
        coalescer = Coalescer() if self._sharing is None else self._sharing.coalescer(local)
        return Enqueuer(coalescer, local.lookups, self.tracers, self._send)

    def end_of(self, deadline: float | None) -> float | None:
        """When a call given *deadline* seconds (``None``: the client's) must be done by."""
        seconds = self.options.deadline if deadline is None else deadline
        return None if seconds is None else running_loop().time() + seconds

    async def traced(
        self, operation: str, attributes: Mapping[str, str | int], work: Awaitable[T]
    ) -> T:
        """Await *work* as one public call (``batch.get_many``): a span in traces, if on."""
        for observer in self.tracers:
            work = observer.traced(operation, attributes, work)
        return await work

    async def _send(  # noqa: PLR0917 - positional, so that a shared call passes them as they are
        self,
        deadline: CallDeadline | None,
        method: str,
        path: str,
        cast: Callable[[Any], T],
        params: dict[str, str | int] | None,
        body: object,
        may_repeat: bool,  # noqa: FBT001 - see above
    ) -> T:
        state = self._state
        flow = state.flow
        local = state.local()
        if local.loading is not None:  # a loop's first calls: the sender, before any permit
            await (local.load() if deadline is None else deadline.within(local.load(), "slot"))
        slots = local.slots
        url = self.options.root + path
        if params:
            url = f"{url}?{urlencode(params)}"
        content = None if body is None else json_bytes(body)
        last_error: InkitError | None = None
        retries = 0
        spent = 0  # the retries that count against max_retries (see Retry.counted)
        waited = 0.0  # seconds this call has waited in the throttle, all attempts together
        while True:
            slot = slots.acquire()
            await (slot if deadline is None else deadline.within(slot, "slot"))
            try:
                # The permit is asked for inside the slot, so it goes only to a request
                # that leaves at once: a cut or pause applies to everything not yet sent.
                permit, waited = await self.permit(last_error, method, path, waited, deadline)
                try:
                    self.check_open()
                    sent = self._attempt(local.sender, method, url, path, content, retries)
                    outcome = await (sent if deadline is None else deadline.within(sent, "attempt"))
                except BaseException:
                    flow.cancel(permit)
                    raise
            finally:
                slots.release()
            if type(outcome) is Reply:
                flow.release(permit, Signal.OK)
                return cast_reply(outcome, cast, method, path, self._call)
            # The slot was given back above: a caller backing off holds nothing others need.
            attempt = Attempt(method=method, path=path, retries=spent, may_repeat=may_repeat)
            retry = self.settle(permit, outcome, attempt)  # type: ignore[arg-type]  # a Reply returned above
            last_error = retry.error
            retries += 1
            spent += retry.counted
            if deadline is not None:  # a sleep past the deadline fails the call now
                deadline.before_sleep(retry.delay, retry_after=retry.server_asked, error=last_error)
            self.report(retry_event(attempt, retry, retries))
            await asyncio.sleep(retry.delay)

    async def _attempt(  # noqa: PLR0917 - positional, on the hot path
        self, sender: Sender, method: str, url: str, path: str, content: bytes | None, retries: int
    ) -> Reply | Outcome:
        """One attempt through the sender, under the per-attempt deadline, watched.

        A usable 2xx comes back as the ``Reply`` itself, with no httpx object made;
        anything else as the ``Answer`` or ``Failure`` the retry policy reads, with the
        httpx objects its error carries built now. A failure is returned, not raised:
        the caller decides on a retry after it has given its concurrency slot back.
        """
        headers = self.headers if content is None else self._json_headers
        watches: list[AttemptWatch] = []
        for observer in self.watchers:
            watch = observer.attempt_started(method, url, path, retries + 1)
            if watch is not None:
                watches.append(watch)
                if extra := watch.headers():  # traceparent
                    headers = {**headers, **extra}
        request = Request(method, url, headers, content, self.timeouts, self.secrets)
        started = time.perf_counter()  # the attempt's own time, not its queueing
        outcome: Reply | Outcome
        try:
            async with asyncio.timeout(self.attempt_deadline):
                reply = await sender.send(request)
        except (TimeoutError, TransportFailure) as failure:
            outcome = failure_of(request, failure)
        except BaseException as exc:
            for watch in watches:  # cancelled, or closed under it
                watch.interrupted(type(exc).__name__, time.perf_counter() - started)
            raise
        else:
            usable = reply.content is not None and 200 <= reply.status < 300
            outcome = reply if usable else answer_of(request, reply)
            if usable and self.keep_responses:  # what response_of(record) reads
                outcome = reply._replace(elapsed=time.perf_counter() - started, attempt=retries + 1)
        if watches:
            elapsed = time.perf_counter() - started
            status, failure_name = summary(outcome)
            for watch in watches:
                watch.ended(status, failure_name, elapsed)
        return outcome

    def check_open(self) -> None:
        if self.is_closed:
            raise InkitError(_CLOSED)

    async def permit(
        self,
        last_error: InkitError | None,
        method: str,
        path: str,
        waited: float,
        deadline: CallDeadline | None,
    ) -> tuple[Permit, float]:
        """Wait for the throttle's leave to send; give up as it says (see ``Throttle``).

        A call's waits add up to the throttle's ``max_wait`` at most, over all its
        attempts: the throttle bounds each wait, and a retry waits only for what is left,
        so a server that refuses everything fails a call within ``max_wait`` plus the time
        of its attempts; the call's *deadline*, if any, bounds the wait too. Returns the
        permit and the call's waiting so far.
        """
        state = self._state
        flow = state.flow
        loop = asyncio.get_running_loop()
        max_wait = state.max_wait
        left = max_wait - waited if waited > 0.0 and max_wait is not None else None
        if left is not None and left <= 0.0:
            raise last_error or self._gave_up(method, path)
        asked = loop.time()
        if deadline is not None:  # paused past the deadline (a Retry-After): fail now
            deadline.before_pause(flow.paused_for())
        acquire = flow.acquire()
        if deadline is not None:  # its error is no TimeoutError: it passes the except below
            acquire = deadline.within(acquire, "throttle")
        try:
            if left is None:
                permit = await acquire
            else:
                async with asyncio.timeout(left):
                    permit = await acquire
        except (ThrottleTimeoutError, TimeoutError):
            raise last_error or self._gave_up(method, path) from None
        now_waited = loop.time() - asked
        if now_waited > NOTABLE_WAIT:
            for observer in self.observers:
                observer.throttle_wait(now_waited)
        return permit, waited + now_waited

    def settle(self, permit: Permit, outcome: Outcome, attempt: Attempt) -> Retry:
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
            # A 429 to a request sent before the throttle's last cut: that cut answered it.
            if status == 429 and not flow.is_current(permit):
                attempt = attrs.evolve(attempt, refusal_answered=True)
        decision = decide(outcome, attempt, self.options)
        # A connection error carries its failure, scrubbed (or what stands in for it,
        # see scrub_failure), as its cause; an answer's error has none.
        cause = decision.error.__cause__
        signal = signal_of(status)
        change = flow.release(permit, signal, decision.pause)
        if change is not None:
            for event in change_events(change, attempt, outcome):
                self.report(event)
        if isinstance(decision, Fail):
            raise decision.error from cause
        if signal is not Signal.THROTTLED and not flow.allow_retry():
            raise decision.error from cause
        return decision

    def _gave_up(self, method: str, path: str) -> APITimeoutError:
        wait = self._state.max_wait or 0.0
        return APITimeoutError(
            f"{method} {path} gave up after waiting {wait:g} s for the throttle's leave to "
            "send (the API is refusing requests or failing); nothing was sent",
            may_have_reached_server=False,
        )

    def report(self, event: ClientEvent) -> None:
        """Tell every observer of an event: the log, OpenTelemetry, ``on_event``."""
        for observer in self.observers:
            observer.event(event)
