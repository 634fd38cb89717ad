"""Batch resources: document batches (``/batch``) and flow batches (``/invoke/batch``).

One class, ``BatchResource``, holds every read (get, get_many, list, wait, watch) and
is parameterised by its path; ``DocumentBatchResource`` adds ``create``, which only
document batches have.

Every lookup by id (``get``, ``get_many``, ``iter_many``, ``watch``, ``wait``) checks
that the answer is the batch asked for: its ``id`` equals the id as given (not its
percent-encoded form). A stale answer, such as one a connection carried over from an
earlier request, raises ``APIResponseValidationError`` instead of passing for another
batch.

Every method takes ``deadline=`` (seconds, or ``None`` for the client's own): the time
the whole call may take (``_deadline.py``). For ``get``, ``create``, ``get_many``,
``iter_many`` (from its first step) and ``wait``, that is the whole call; ``list`` and
``watch`` are made of many calls, one per page or poll, and the deadline bounds each.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal, overload

from .._converter import structure
from .._deadline import CallDeadline
from .._fanout import Lookups, gather_lookups
from .._models import Batch, CreatedBatch, RenderSpec
from .._pagination import BatchList, ListFilters
from .._paths import encode_segment
from .._polling import check_poll_interval, check_wait_timeout, wait_until_finished, watch_batch
from ._base import APIResource, checked_deadline, checked_text, record_parser, render_body

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable

    from .._cache import CacheScope
    from .._coalesce import Ticket
    from .._engine import Engine
    from .._exceptions import InkitError
    from .._fanout import Enqueuer

__all__ = ["BatchResource", "DocumentBatchResource"]


def _parse_created(data: object) -> CreatedBatch:
    return structure(data, CreatedBatch)


class BatchResource(APIResource):
    """Reading batches: ``client.batch`` and ``client.flow_batch`` (flow batches).

    One class serves every batch-shaped resource; it is parameterised by its path.
    """

    __slots__ = ("_name", "_path")

    def __init__(self, engine: Engine, path: str, *, name: str | None = None) -> None:
        """Send through *engine*, to the collection at *path* (``batch``, ``invoke/batch``).

        *name* names the calls in traces (``flow_batch.get``); it defaults to *path*.
        """
        super().__init__(engine)
        self._path = "/" + path
        self._name = name or path

    def __repr__(self) -> str:
        """Name the resource's path."""
        return f"<{type(self).__name__} {self._path}>"

    async def get(
        self, batch_id: str, *, use_cache: bool = True, deadline: float | None = None
    ) -> Batch:
        """Fetch one batch by id.

        The id is percent-encoded as exactly one path segment, so ``a/b``, ``x?y=1`` or
        ``../template/x`` can never reach another resource or add a query. Lookups of
        the same id under way at the same moment share one request (see
        ``AsyncInkit(coalesce=...)``); with a ``BatchCache``, a finished batch seen
        within its ``ttl`` is returned without one, unless *use_cache* is false.

        Args:
            batch_id: The batch.
            use_cache: Whether a ``BatchCache`` may answer.
            deadline: Seconds this call may take in all (see ``AsyncInkit(deadline=...)``);
                ``None`` (the default): the client's ``deadline``.

        Raises:
            TypeError: *batch_id* is not a ``str`` (nothing is sent).
            ValueError: *batch_id* is empty, blank, ``.``, ``..``, longer than 1,024
                characters or not valid Unicode (nothing is sent).
            NotFoundError: No batch with this id is visible to the token.
            APIStatusError: Any other non-2xx answer (see the exception tree).
            APIConnectionError: No response after the retries.
            APIResponseValidationError: The body is not a batch record, or is the
                record of another batch than *batch_id*.
            DeadlineExceededError: The deadline ran out, or could not be met.
        """
        segment = encode_segment(batch_id, "batch_id")
        end = self._engine.end_of(checked_deadline(deadline))
        return await self._fetch(segment, use_cache=use_cache, end=end)

    @overload
    async def get_many(
        self,
        batch_ids: Iterable[str],
        *,
        return_exceptions: Literal[False] = False,
        deadline: float | None = None,
    ) -> list[Batch]: ...

    @overload
    async def get_many(
        self,
        batch_ids: Iterable[str],
        *,
        return_exceptions: Literal[True],
        deadline: float | None = None,
    ) -> list[Batch | InkitError]: ...

    async def get_many(
        self,
        batch_ids: Iterable[str],
        *,
        return_exceptions: bool = False,
        deadline: float | None = None,
    ) -> list[Batch] | list[Batch | InkitError]:
        """Fetch many batches concurrently; the results come back in input order.

        Identical ids are fetched once (and appear at each of their positions). Every id
        is checked before anything is sent. The lookups wait in the client's queue (one
        per event loop), first come first started, at most ``max_concurrency`` at once:
        a task exists only for a lookup under way, so a list of 10,000 ids leaves the
        event loop responsive. Callers of one client share lookups as ``gather`` of
        ``get`` calls does: an id another caller has queued or under way is joined, not
        sent again; and each caller's ids wait behind those of the callers who came
        before it, so callers are served in the order they came.

        Args:
            batch_ids: The ids, any iterable of ``str`` (a lone ``str`` is refused).
            return_exceptions: When true, a lookup that failed with an ``InkitError``
                puts that error in its place and the others still complete. When false
                (the default), the first failure is raised and the lookups still
                running are cancelled cleanly.
            deadline: Seconds the whole call may take, every lookup together (see
                ``AsyncInkit(deadline=...)``); ``None`` (the default): the client's
                ``deadline``. A lookup not done by then ends with
                ``DeadlineExceededError``: in its place with *return_exceptions*.

        Raises:
            TypeError: *batch_ids* is a ``str``, or holds a non-``str`` id.
            ValueError: An id is empty, blank, ``.``, ``..``, longer than 1,024
                characters or not valid Unicode (nothing is sent).
            InkitError: The first failed lookup, when *return_exceptions* is false.
        """
        ids = list(_checked_ids(batch_ids))
        segments = {batch_id: encode_segment(batch_id, "batch_id") for batch_id in ids}
        seconds = checked_deadline(deadline)
        end = self._engine.end_of(seconds)
        results = await self._engine.traced(
            f"{self._name}.get_many",
            {"inkit.batch.count": len(segments)},
            gather_lookups(
                list(dict.fromkeys(segments.values())),
                self._submitter(end),
                end=end,
                width=self._engine.options.max_concurrency,
                return_exceptions=return_exceptions,
            ),
        )
        return [results[segments[batch_id]] for batch_id in ids]

    def iter_many(
        self, batch_ids: Iterable[str], *, deadline: float | None = None
    ) -> AsyncGenerator[tuple[str, Batch | InkitError]]:
        """Fetch many batches concurrently; yield ``(batch_id, result)`` as each finishes.

        ``async for batch_id, result in client.batch.iter_many(ids):`` gets each result
        the moment it arrives, in completion order: a ``Batch``, or the ``InkitError``
        that lookup ended with. A failure never discards the lookups that finished, so
        a web page can show progress and a report can keep every batch it got. Use
        ``get_many`` when you want the whole list in input order; use this to act on
        results as they come, or to keep going past failures without waiting for all.

        Identical ids are fetched once and yielded once. Every id is checked before
        anything is sent (here, when ``iter_many`` is called). The lookups go through
        the client's queue as ``get_many``'s do (shared with other callers, first come
        first started), and results are yielded from the first one on, while later
        lookups are still starting. At most ``max_concurrency`` ids are handed in ahead
        of your loop, so leaving it after *n* results has queued at most *n* +
        ``max_concurrency`` lookups. Leaving the loop early (``break``) stops the
        lookups under way (those no other caller waits for) once the iterator is
        closed; wrap it in ``contextlib.aclosing(...)`` to close it at that very point.

        *deadline*: seconds the whole iteration may take, from its first step (see
        ``AsyncInkit(deadline=...)``; ``None``, the default: the client's
        ``deadline``). A lookup not done by then yields its ``DeadlineExceededError``.
        The time the loop's body takes counts too.

        Raises:
            TypeError: *batch_ids* is a ``str``, or holds a non-``str`` id.
            ValueError: An id is empty, blank, ``.``, ``..``, longer than 1,024
                characters or not valid Unicode (nothing is sent).
        """
        segments = {
            encode_segment(batch_id, "batch_id"): batch_id for batch_id in _checked_ids(batch_ids)
        }
        return self._iter_many(segments, checked_deadline(deadline))

    async def _iter_many(
        self, segments: dict[str, str], deadline: float | None
    ) -> AsyncGenerator[tuple[str, Batch | InkitError]]:
        # The only async generator here: at the loop's end, shutdown_asyncgens closes it
        # once, and its `finally` closes the lookups (a plain object, not a generator).
        end = self._engine.end_of(deadline)
        lookups = Lookups(
            list(segments),
            self._submitter(end),
            end=end,
            window=self._engine.options.max_concurrency,
        )
        try:
            async for segment, result in lookups:
                yield segments[segment], result
        finally:
            await lookups.aclose()

    def list(
        self,
        *,
        page_size: int | None = None,
        sort: str | None = None,
        search: str | None = None,
        destination_name: str | None = None,
        destination_status: str | None = None,
        deadline: float | None = None,
    ) -> BatchList:
        """List batches, all pages: ``async for batch in client.batch.list(...)``.

        Nothing is sent until iteration starts; then pages are fetched one at a time as
        they are reached. Only the filters you set are sent.

        Args:
            page_size: Batches per request, 1 to 1000 (the API's default is 25).
            sort: A field name, with a leading ``-`` for descending (``-created_at``).
            search: Only batches whose name (or id) contains this text.
            destination_name: Only batches with this destination (``inkit_storage``).
            destination_status: Only batches whose destination is in this state
                (``completed``, ``failed``, ``in_progress``).
            deadline: Seconds each page's fetch may take (see
                ``AsyncInkit(deadline=...)``); ``None`` (the default): the client's
                ``deadline``. Per page, not for the whole listing: the time your loop
                spends between pages is not the SDK's. To bound a whole listing, wrap
                the loop in ``asyncio.timeout``.

        Raises:
            ValueError: *page_size* is outside 1..1000, *sort* is malformed, or a filter
                is empty, longer than 1,024 characters or not valid Unicode (raised
                here, before any request).
            TypeError: A filter has the wrong type.

        Iterating raises ``APIResponseValidationError`` when an answer is for another
        page than the one asked for, so a server that ignores ``page`` cannot make the
        listing go on forever; each page is asked for once.
        """
        filters = ListFilters(
            page_size=page_size,
            sort=sort,
            search=search,
            destination_name=destination_name,
            destination_status=destination_status,
        )
        seconds = checked_deadline(deadline)
        return BatchList(self._pages(self._path, Batch, filters, name=self._name, deadline=seconds))

    def watch(
        self,
        batch_id: str,
        *,
        poll_interval: float = 2.0,  # as written in the API reference: DEFAULT_POLL_INTERVAL
        deadline: float | None = None,
    ) -> AsyncIterator[Batch]:
        """Follow a batch: ``async for snapshot in client.batch.watch(batch_id)``.

        Yields the first snapshot, then each one whose status or counters changed, and
        ends after yielding a finished one (``Batch.is_finished``). Polls start at most
        once every *poll_interval* seconds. Each poll is a ``get``: transient failures
        are retried by the client's policy, and an error it does not retry (401, 403,
        404, ...) ends the iteration by propagating. Breaking out of the loop, or
        cancelling the task, stops polling at once.

        *deadline*: seconds each poll may take (see ``AsyncInkit(deadline=...)``;
        ``None``, the default: the client's ``deadline``). To bound the whole
        following, use ``wait(deadline=...)`` or wrap the loop in ``asyncio.timeout``.

        Raises:
            ValueError: *batch_id*, *poll_interval* or *deadline* is invalid (raised here).
        """
        segment = encode_segment(batch_id, "batch_id")
        interval = check_poll_interval(poll_interval)
        seconds = checked_deadline(deadline)
        return watch_batch(lambda: self._fetch(segment, end=self._engine.end_of(seconds)), interval)

    async def wait(
        self,
        batch_id: str,
        *,
        poll_interval: float = 2.0,  # as written in the API reference: DEFAULT_POLL_INTERVAL
        timeout: float | None = None,
        deadline: float | None = None,
    ) -> Batch:
        """Poll a batch until it is finished and return that snapshot.

        Built on ``watch``: polls at most once every *poll_interval* seconds; transient
        failures follow the client's retry policy; 401/403/404 propagate at once.

        Args:
            batch_id: The batch to wait for.
            poll_interval: Seconds between the starts of two polls (default 2).
            timeout: Seconds to wait for the batch to finish (default: no limit): then
                ``WaitTimeoutError`` with the last snapshot, an outcome to handle.
            deadline: Seconds the whole call may take, every poll and the pauses
                between them together (``None``, the default: the client's
                ``deadline``, for the whole wait too). Then, or as soon as it cannot be
                met (a poll's ``Retry-After``, or the next poll, would come after it),
                ``DeadlineExceededError``. With both, whichever ends first applies.

        Raises:
            WaitTimeoutError: *timeout* passed first; ``.batch`` is the last snapshot.
            DeadlineExceededError: The deadline ran out, or could not be met.
            ValueError: An argument is invalid (before any request).
        """
        segment = encode_segment(batch_id, "batch_id")
        interval = check_poll_interval(poll_interval)
        seconds = check_wait_timeout(timeout)
        end = self._engine.end_of(checked_deadline(deadline))
        fetch = self._fetcher(end)
        snapshots = watch_batch(
            lambda: fetch(segment),
            interval,
            until=CallDeadline.of(end, "GET", f"{self._path}/{segment}"),
        )
        return await wait_until_finished(snapshots, seconds, batch_id)

    def _submitter(self, end: float | None) -> Callable[[str], Ticket | Batch]:
        """Queue the lookup of a segment for a fan-out, by *end*; a cached batch at once.

        The first lookup asks the engine where to queue: a closed client (or one used in
        a loop it cannot serve) fails each lookup with its ``InkitError``, as ``get`` does.
        """
        cache = self._engine.cache
        operation = f"{self._name}.get"
        enqueuers: list[Enqueuer] = []

        def submit(segment: str) -> Ticket | Batch:
            path = f"{self._path}/{segment}"
            parse = record_parser(segment, Batch, "batch")
            if cache is not None:
                if (hit := cache.get(path)) is not None:
                    return hit
                parse = _kept(parse, cache, path)
            if not enqueuers:
                enqueuers.append(self._engine.fan_out())
            attributes = {"inkit.batch.id": segment}
            return enqueuers[0].enqueue(
                path, parse, operation=operation, attributes=attributes, end=end
            )

        return submit

    def _fetcher(self, end: float | None) -> Callable[[str], Awaitable[Batch]]:
        """``_fetch`` of a segment, by the deadline at *end* (``None``: none)."""
        return lambda segment: self._fetch(segment, end=end)

    async def _fetch(self, segment: str, *, end: float | None, use_cache: bool = True) -> Batch:
        path = f"{self._path}/{segment}"
        # This client's own part of the cache: entries of its API root and token only.
        cache = self._engine.cache
        if cache is not None and use_cache and (hit := cache.get(path)) is not None:
            return hit
        batch = await self._lookup(
            path, segment, Batch, kind="batch", operation=f"{self._name}.get", end=end
        )
        if cache is not None:
            cache.put(path, batch)
        return batch


def _kept(
    parse: Callable[[object], Batch], cache: CacheScope, path: str
) -> Callable[[object], Batch]:
    """*parse*, then keep the batch in *cache* (if finished): once per request, shared or not."""

    def parse_and_keep(data: object) -> Batch:
        batch = parse(data)
        cache.put(path, batch)
        return batch

    return parse_and_keep


def _checked_ids(batch_ids: object) -> Iterable[str]:
    if isinstance(batch_ids, str | bytes):
        raise TypeError("batch_ids must be an iterable of ids, not a single string")
    if not isinstance(batch_ids, Iterable):
        raise TypeError(f"batch_ids must be an iterable of ids, got {type(batch_ids).__name__}")
    return batch_ids  # pyright: ignore[reportUnknownVariableType] - each id is checked next


def _render_body(render: object, index: int) -> dict[str, Any]:
    """The JSON of one render; only the keys that are set."""
    if isinstance(render, RenderSpec):
        body: dict[str, Any] = {"merge_parameters": render.merge_parameters}
        for key in ("name", "description", "destinations"):
            value = getattr(render, key)
            if value is not None:
                body[key] = value
    elif isinstance(render, Mapping):
        body = dict(render)  # pyright: ignore[reportUnknownArgumentType]
    else:
        raise TypeError(
            f"renders[{index}] must be a RenderSpec or a dict, got {type(render).__name__}"
        )
    return render_body(body, f"renders[{index}]")


class DocumentBatchResource(BatchResource):
    """Document batches, ``client.batch``: everything ``BatchResource`` reads, plus create."""

    __slots__ = ()

    async def create(
        self,
        *,
        template_id: str,
        renders: Iterable[RenderSpec | Mapping[str, Any]],
        name: str | None = None,
        deadline: float | None = None,
    ) -> CreatedBatch:
        """Create a batch that renders *template_id* once per item of *renders*.

        Not idempotent: the API has no idempotency key, so a create that reached the
        server and is sent again makes a second batch. The create is therefore retried
        only when it certainly did not reach the server (the connection was refused or
        could not be opened in time) or when the server refused it with 429; never
        after a timeout, a dropped connection or a 5xx, where it may have been made.
        Any 2xx answer is success.

        Args:
            template_id: The template to render (``tmpl_...``).
            renders: One ``RenderSpec`` (or dict with the API's keys) per document;
                each needs ``merge_parameters``.
            name: A name for the batch.
            deadline: Seconds the create may take in all (see
                ``AsyncInkit(deadline=...)``); ``None`` (the default): the client's
                ``deadline``. An attempt the deadline cuts may have made the batch:
                the error's ``may_have_reached_server`` says so, and it is not sent
                again.

        Raises:
            ValueError: *template_id* is empty, *renders* is empty, a render has no
                ``merge_parameters``, or a value of a render nests objects and lists
                more than 64 levels deep (``MAX_JSON_DEPTH``), or contains itself; all
                before any request. No template needs that depth, and Python's JSON
                encoder fails at about 1,000 levels.
            TypeError: An argument has the wrong type (before any request).
            DeadlineExceededError: The deadline ran out, or could not be met.
        """
        checked_text("template_id", template_id)
        if isinstance(renders, str | bytes | Mapping):
            raise TypeError("renders must be a list of renders, not a single value")
        bodies = [_render_body(render, index) for index, render in enumerate(renders)]
        if not bodies:
            raise ValueError("renders must hold at least one render")
        payload: dict[str, Any] = {"template_id": template_id, "renders": bodies}
        if name is not None:
            if not isinstance(name, str):
                raise TypeError(f"name must be a str, got {type(name).__name__}")
            payload["name"] = name
        seconds = checked_deadline(deadline)
        return await self._create(
            self._path,
            payload,
            _parse_created,
            operation=f"{self._name}.create",
            attributes={"inkit.template.id": template_id, "inkit.renders": len(bodies)},
            end=self._engine.end_of(seconds),
        )
