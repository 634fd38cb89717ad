"""A download through the engine's corridor: one GET whose body streams to the caller.

``open_download`` runs the same steps as ``Engine.request`` (slot, permit, send,
decide, observe, sleep and repeat), with three differences:

- **The answer is not read whole.** An attempt ends when a 2xx's head and its first
  piece of body have arrived (``Sender.open``); the caller gets a ``Download`` that
  hands the rest over piece by piece. Retries (429, 5xx, transport failures, by the
  client's policy) happen only before that first piece is handed over: once the
  caller has bytes, a failure ends the download with its typed error, never a
  silent second request whose bytes would follow the first one's.
- **The size limit is the download's own** (``max_size``, default
  ``DEFAULT_MAX_DOWNLOAD_SIZE``), not the 10 MiB of a JSON body: a declared
  ``Content-Length`` over it fails the call before any byte is read, and the bytes
  are counted as they arrive (after decoding, should the server encode them), so an
  endless body ends there. An error answer (non-2xx) is read within the JSON limit,
  as any.
- **Not ready yet** (``ReadyWait``): a render's PDF answers 404 while the render is
  in progress. With a ``ReadyWait``, a 404 is asked again every ``interval`` seconds
  for at most ``limit`` seconds from the first 404, within the call's deadline; then
  the ``NotFoundError`` is raised. Without one (a document), 404 is final at once.

The concurrency slot is held until the download is closed: the body holds a pooled
connection all that time, and the pool is sized to the slots. The call's deadline
(``end``) bounds the whole download, body included. ``timeout`` bounds an attempt
until the first piece has arrived, and then each wait for the next piece: a body
that stops for that long fails with ``APITimeoutError``; a slow but steady one goes
on (a 500 MiB PDF takes longer than 30 s on most links).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Final
from urllib.parse import urlencode

import attrs
import httpx

from ._body import Inflater, decode_limited
from ._deadline import CallDeadline
from ._exceptions import InkitError, connection_error, too_large_error
from ._observe import retry_event, summary
from ._outcomes import answer_of, failure_of
from ._policy import Answer, Attempt, Outcome, Retry, decide
from ._throttle import Signal, signal_of
from ._wire import Opened, Reply, Request, TransportFailure

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator

    from ._engine import Engine
    from ._observe import AttemptWatch
    from ._throttle import Permit
    from ._wire import Sender

__all__ = [
    "DEFAULT_MAX_DOWNLOAD_SIZE",
    "Download",
    "ReadyWait",
    "declared_length",
    "open_download",
    "size_verdict",
]

#: Largest download (bytes, after decoding) a call takes unless told otherwise: 4 GiB.
#: Far above any PDF Inkit makes, far below a disk an endless body would fill.
DEFAULT_MAX_DOWNLOAD_SIZE: Final = 4 * 1024**3
_CLOSED: Final = "The AsyncInkit client is closed; create a new one."
_NOT_READY: Final = "404 Not Found (not ready yet)"
#: More digits than any length a 64-bit size holds: not a length.
_MAX_DIGITS: Final = 19


@attrs.frozen
class ReadyWait:
    """How a download waits for a resource that answers 404 until it exists (a render's PDF).

    The official SDKs retry 404 on these paths: inkit-python 15 times, 2 s apart (paths
    ending in ``/pdf`` or ``download/{id}``); inkit-nodejs 3 times, 1 s apart (paths
    with ``pdf``, ``docx`` or ``html``). The defaults follow inkit-python: ask every
    2 s for up to 30 s after the first 404; the call's deadline ends it sooner.
    """

    interval: float = 2.0
    """Seconds between two asks."""
    limit: float = 30.0
    """Seconds after the first 404 when the download gives up with ``NotFoundError``."""

    def asks_again(self, first_404: float, now: float) -> bool:
        """Whether a 404 at *now* (the first one at *first_404*) is asked again (pure)."""
        return now + self.interval <= first_404 + self.limit


def size_verdict(declared: int | None, received: int, max_size: int) -> str | None:
    """Why a download of *received* bytes so far (of *declared*, if said) must stop, if it must.

    Pure: ``None`` to go on; else the reason, for the error's message.
    """
    if declared is not None and declared > max_size:
        return f"it declares {declared:,} bytes (Content-Length), over max_size={max_size:,}"
    if received > max_size:
        return f"it sent more than max_size={max_size:,} bytes"
    return None


def declared_length(headers: tuple[tuple[bytes, bytes], ...]) -> int | None:
    """The ``Content-Length`` a head declares: ASCII digits only (else: not declared)."""
    for name, value in headers:
        if name.lower() == b"content-length":
            text = value.strip()
            if text.isdigit() and text.isascii() and len(text) <= _MAX_DIGITS:
                return int(text)
            return None
    return None


def _header(headers: tuple[tuple[bytes, bytes], ...], wanted: bytes) -> str | None:
    for name, value in headers:
        if name.lower() == wanted:
            return value.decode("latin-1")
    return None


@attrs.frozen
class _Head:
    """A 2xx whose head and first piece arrived: the end of the last attempt."""

    opened: Opened
    pieces: AsyncGenerator[bytes]
    first: bytes
    request: Request


@attrs.frozen
class _TooLarge:
    """A 2xx that declares more than ``max_size``: not read, not retried."""

    error: InkitError


class Download:
    """A 2xx download whose body is arriving: decoded, counted and bounded piece by piece.

    Holds a concurrency slot (and through it a pooled connection) until ``aclose``.
    """

    __slots__ = (
        "_closed",
        "_deadline",
        "_decoder",
        "_head",
        "_max_size",
        "_release",
        "_what",
        "content_length",
        "content_type",
        "received",
    )

    def __init__(
        self,
        head: _Head,
        release: Callable[[], None],
        *,
        deadline: CallDeadline | None,
        max_size: int,
        what: str,
    ) -> None:
        """The download whose attempt ended with *head*; *release* gives its slot back."""
        self._head = head
        self._release = release
        self._deadline = deadline
        self._max_size = max_size
        self._what = what
        self._closed = False
        headers = head.opened.headers
        # Checked in the attempt already: a bad Content-Encoding failed it there.
        self._decoder = Inflater.for_encoding(_header(headers, b"content-encoding"))
        self.content_length = None if self._decoder else declared_length(headers)
        """The body's size as the server declared it (``None``: not declared, or encoded)."""
        self.content_type = _header(headers, b"content-type")
        """The body's ``Content-Type``, as the server said it."""
        self.received = 0
        """Bytes handed over so far (decoded)."""

    async def chunks(self) -> AsyncGenerator[bytes]:
        """The body, decoded, in pieces of at most ``PIECE_BYTES`` (decoded: 256 KiB).

        Raises:
            APIConnectionError: The connection failed before the body's end, or the
                body ended short of its ``Content-Length``.
            APITimeoutError: No byte came for ``timeout`` seconds.
            DeadlineExceededError: The call's deadline passed.
            APIResponseValidationError: The body is larger than ``max_size``.
        """
        decoder = self._decoder
        yield_ = self._counted  # decoded, counted against max_size
        for chunk in yield_(self._head.first):
            yield chunk
        failure: TransportFailure | None = None
        try:
            async for piece in self._pieces():
                for chunk in yield_(piece):
                    yield chunk
        except TransportFailure as exc:
            failure = exc
        if failure is not None:  # raised here: the failure is the error's cause, not context
            raise self._failed(failure)
        problem: str | None = None
        if decoder is not None:
            try:
                decoder.check_complete()
            except httpx.DecodingError as exc:
                problem = str(exc)
        if problem is not None:
            raise self._failed(TransportFailure("DecodingError", problem))
        if self.content_length is not None and self.received != self.content_length:
            problem = f"the body ended after {self.received:,} of its {self.content_length:,} bytes"
            raise self._failed(TransportFailure("RemoteProtocolError", problem))

    def _counted(self, piece: bytes) -> Iterator[bytes]:
        """*piece* decoded, bit by bit (a small gzip piece may inflate a lot), and counted."""
        for chunk in self._decoded(piece):
            self.received += len(chunk)
            if (reason := size_verdict(None, self.received, self._max_size)) is not None:
                raise self._too_large(reason)
            if chunk:
                yield chunk

    def _decoded(self, piece: bytes) -> Iterator[bytes]:
        if self._decoder is None:
            yield piece
            return
        try:
            yield from self._decoder.pieces(piece)
        except httpx.DecodingError as exc:
            problem = str(exc)
        else:
            return
        raise self._failed(TransportFailure("DecodingError", problem))

    def _pieces(self) -> AsyncIterator[bytes]:
        """The raw pieces after the first, each read by the deadline (if any).

        Between two pieces the sender's read timeout applies (``open_download`` sets it).
        """
        if self._deadline is None:
            return self._head.pieces  # the hot path: nothing between the sender and here
        return self._by_deadline(self._deadline)

    async def _by_deadline(self, deadline: CallDeadline) -> AsyncIterator[bytes]:
        while (
            piece := await deadline.within(_anext_or_none(self._head.pieces), "attempt")
        ) is not None:
            yield piece

    def _failed(self, failure: TransportFailure) -> InkitError:
        outcome = failure_of(self._head.request, failure)
        return connection_error(self._what, outcome.error, outcome.request, reached=True)

    def _too_large(self, reason: str) -> InkitError:
        return _too_large(self._what, self._head.opened, self._head.request, reason)

    async def aclose(self) -> None:
        """Let go of the body and the slot; idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            await self._head.pieces.aclose()
        finally:
            try:
                await self._head.opened.body.aclose()
            finally:
                self._release()


def _too_large(what: str, opened: Opened, request: Request, reason: str) -> InkitError:
    reply = Reply(opened.status, opened.reason, opened.headers, None, opened.sent_token)
    return too_large_error(what, answer_of(request, reply).response, reason)


async def _anext_or_none(pieces: AsyncIterator[bytes]) -> bytes | None:
    return await anext(pieces, None)


async def open_download(
    engine: Engine,
    path: str,
    *,
    params: dict[str, str | int] | None = None,
    end: float | None,
    max_size: int = DEFAULT_MAX_DOWNLOAD_SIZE,
    ready: ReadyWait | None = None,
) -> Download:
    """Send a download's GET through *engine*; return once its body begins (see the module).

    Args:
        engine: The client's engine.
        path: Relative to ``base_url``, starting with ``/``, already percent-encoded.
        params: The query string (``page``).
        end: When the whole download must be done by (``Engine.end_of``); ``None``: never.
        max_size: Most bytes the body may have (decoded).
        ready: How to wait while the resource answers 404; ``None``: 404 is final.

    Raises:
        InkitError: The client is closed; or any error of the exception tree once the
            retry policy gives up (``APIResponseValidationError`` for a declared size
            over *max_size*).
    """
    if engine.is_closed:
        raise InkitError(_CLOSED)
    flow = engine.state.flow
    local = engine.state.local()
    slots = local.slots
    url = engine.options.root + path
    if params:
        url = f"{url}?{urlencode(params)}"
    deadline = CallDeadline.of(end, "GET", path)
    if local.loading is not None:  # a loop's first calls: the sender, before any permit
        await (local.load() if deadline is None else deadline.within(local.load(), "slot"))
    last_error: InkitError | None = None
    retries = spent = 0
    waited = 0.0
    first_404: float | None = None
    while True:
        slot = slots.acquire()
        await (slot if deadline is None else deadline.within(slot, "slot"))
        kept = False
        try:
            permit, waited = await engine.permit(last_error, "GET", path, waited, deadline)
            try:
                engine.check_open()
                sent = _attempt(engine, local.sender, url, path, retries, max_size)
                outcome = await (sent if deadline is None else deadline.within(sent, "attempt"))
            except BaseException:
                flow.cancel(permit)
                raise
            if isinstance(outcome, _TooLarge):
                flow.release(permit, Signal.OK)
                raise outcome.error
            if isinstance(outcome, _Head):
                flow.release(permit, Signal.OK)
                download = Download(
                    outcome,
                    slots.release,
                    deadline=deadline,
                    max_size=max_size,
                    what=f"GET {path}",
                )
                kept = True
                return download
        finally:
            if not kept:
                slots.release()
        attempt = Attempt(method="GET", path=path, retries=spent, may_repeat=True)
        first_404, retry = _retry(engine, permit, outcome, attempt, ready, first_404)
        spent += retry.counted
        last_error = retry.error
        retries += 1
        if deadline is not None:  # a sleep past the deadline fails the call now
            deadline.before_sleep(retry.delay, retry_after=retry.server_asked, error=last_error)
        engine.report(retry_event(attempt, retry, retries))
        await asyncio.sleep(retry.delay)


def _retry(  # noqa: PLR0917 - the loop's state, passed as it is
    engine: Engine,
    permit: Permit,
    outcome: Outcome,
    attempt: Attempt,
    ready: ReadyWait | None,
    first_404: float | None,
) -> tuple[float | None, Retry]:
    """The retry after *outcome* (a 404 not ready yet: by *ready*), or raise its error.

    Returns the time of the first 404 (``None``: none yet) and the retry.
    """
    if ready is not None and _is_not_found(outcome):
        now = asyncio.get_running_loop().time()
        first_404 = now if first_404 is None else first_404
        if ready.asks_again(first_404, now):
            # Not a failure: the throttle hears an answer, the retry budget pays nothing.
            engine.state.flow.release(permit, signal_of(404))
            error = decide(outcome, attempt, engine.options).error
            return first_404, Retry(
                delay=ready.interval, reason=_NOT_READY, error=error, status_code=404, counted=False
            )
    return first_404, engine.settle(permit, outcome, attempt)


def _is_not_found(outcome: Outcome) -> bool:
    return isinstance(outcome, Answer) and outcome.response.status_code == 404


async def _attempt(  # noqa: PLR0917 - positional, as the engine's
    engine: Engine, sender: Sender, url: str, path: str, retries: int, max_size: int
) -> _Head | _TooLarge | Outcome:
    """One attempt: open, then the first piece of a 2xx, or an error answer read whole.

    Like the engine's attempt: under the per-attempt deadline, and watched; a failure is
    returned, not raised, so the caller decides after giving its slot back.
    """
    # The file as it is: no compression asked for (a PDF is compressed inside already).
    headers = {**engine.headers, "Accept": "*/*", "Accept-Encoding": "identity"}
    watches: list[AttemptWatch] = []
    for observer in engine.watchers:
        watch = observer.attempt_started("GET", url, path, retries + 1)
        if watch is not None:
            watches.append(watch)
            if extra := watch.headers():  # traceparent
                headers = {**headers, **extra}
    timeouts = engine.timeouts
    if timeouts.read is None and engine.attempt_deadline is not None:
        # ``timeout`` bounds this attempt until the first piece, then (as the sender's
        # read timeout) each wait for the next: a 500 MiB body may take minutes.
        timeouts = timeouts._replace(read=engine.attempt_deadline)
    request = Request("GET", url, headers, None, timeouts, engine.secrets)
    started = time.perf_counter()
    outcome: _Head | _TooLarge | Outcome
    try:
        async with asyncio.timeout(engine.attempt_deadline):
            opened = await sender.open(request)
            outcome = await _first_or_answer(opened, request, max_size, path)
    except (TimeoutError, TransportFailure) as failure:
        outcome = failure_of(request, failure)
    except BaseException as exc:
        for watch in watches:  # cancelled, or closed under it
            watch.interrupted(type(exc).__name__, time.perf_counter() - started)
        raise
    if watches:
        elapsed = time.perf_counter() - started
        status: int | None
        if isinstance(outcome, _Head | _TooLarge):
            status, failure_name = 200, None
        else:
            status, failure_name = summary(outcome)
        for watch in watches:
            watch.ended(status, failure_name, elapsed)
    return outcome


async def _first_or_answer(
    opened: Opened, request: Request, max_size: int, path: str
) -> _Head | _TooLarge | Answer:
    """A 2xx's first piece (``_Head``, the body left open), or what ends it (body closed)."""
    body = opened.body
    keep = False
    try:
        encoding = _header(opened.headers, b"content-encoding")
        problem: str | None = None
        try:
            Inflater.for_encoding(encoding)
        except httpx.DecodingError as exc:
            problem = str(exc)
        if problem is not None:
            raise TransportFailure("DecodingError", problem)
        pieces = body.pieces()
        if not 200 <= opened.status < 300:
            try:
                content = await decode_limited(pieces, encoding)
            except httpx.DecodingError as exc:
                problem = str(exc)
            else:
                reply = Reply(
                    opened.status, opened.reason, opened.headers, content, opened.sent_token
                )
                return answer_of(request, reply)
            raise TransportFailure("DecodingError", problem)
        declared = None if encoding else declared_length(opened.headers)
        if (reason := size_verdict(declared, 0, max_size)) is not None:
            return _TooLarge(_too_large(f"GET {path}", opened, request, reason))
        first = await anext(pieces, b"")
        keep = True
        return _Head(opened, pieces, first, request)
    finally:
        if not keep:
            await body.aclose()
