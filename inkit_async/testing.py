"""A fake Inkit for tests: the batch API in memory, in process or over a socket.

::

    from inkit_async.testing import FakeInkit

    async def test_report_waits_for_the_batch():
        fake = FakeInkit()
        batch_id = fake.add_batch(name="invoices", destinations={"inkit_storage": 3})
        async with fake.client() as client:
            batch = await client.batch.wait(batch_id, poll_interval=0.01)
        assert batch.progress.completed == 3

The fake follows what Inkit documents (``shared/inkit-api.md`` in the repository):
``GET /v1/batch/{id}``, ``GET /v1/batch`` with pagination and filters,
``POST /v1/batch``, and the same reads under ``/v1/invoke/batch`` for flow batches;
401 for a missing or wrong ``X-Inkit-API-Token``, 404 for an unknown id, 405 for
other methods. Each batch's counters advance as it is polled (``docs_per_poll``
documents per destination per ``GET``), or when a test says so (``advance``,
``complete``, ``fail``). ``fail_next`` injects faults; ``limit_rate`` makes the fake
refuse requests beyond a rate with 429, as a rate-limited API does; ``requests``
records what came in.

Bad input gets the answer an API gives, never a Python exception: a body that is not
JSON (empty, not UTF-8, ``NaN``, a number beyond a float's range, nested more than 67
levels) is a 400, a JSON body against the documented create rules a 422, a bad
``page``, ``page_size``, ``sort`` or ``destination_status`` a 400; each with
``{"error": "..."}`` saying what is wrong. A fault in the fake itself is a 500 (and a
log record), the same in process and over a socket.

``fake.client()`` is an ``AsyncInkit`` wired to the fake in process (no sockets);
``fake.app`` is an ASGI application, so any ASGI server can serve the same fake over a
real socket. Both go through one handler, so they behave the same.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import re
import string
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Unpack, cast
from urllib.parse import parse_qsl, unquote

from ._client import AsyncInkit
from ._constants import MAX_JSON_DEPTH
from ._retry import Backoff
from ._senders import InProcessTransport
from ._validate import check_int, check_number, check_optional_seconds, check_seconds

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping, MutableMapping

    from ._config import OptionArguments

__all__ = ["ASGIApp", "FakeInkit", "FakeRequest"]

#: The token ``FakeInkit()`` accepts unless given another.
DEFAULT_FAKE_TOKEN: Final = "fake-inkit-token"  # noqa: S105 - a fake's well-known token
#: The base URL of ``fake.client()``; the host is never resolved.
FAKE_BASE_URL: Final = "http://testserver/v1"

_ALPHABET: Final = string.ascii_letters + string.digits
_DEFAULT_PAGE_SIZE: Final = 25
_MAX_PAGE_SIZE: Final = 1000
_SORT_FIELDS: Final = ("created_at", "id", "name", "status", "total")
_DESTINATION_STATES: Final = ("completed", "failed", "in_progress")
#: ``page`` and ``page_size``: ASCII digits, at most 18 (a 64-bit integer), nothing else.
_WHOLE_NUMBER: Final = re.compile(r"[0-9]{1,18}")
#: Deepest nesting of a request body: a create body is 3 levels above a render's values,
#: which the SDK lets nest ``MAX_JSON_DEPTH`` (64) levels. Checked after decoding, well
#: below the depth at which Python's decoder raises ``RecursionError`` (about 1,000),
#: so the answer does not depend on how deep the call stack happens to be.
_MAX_BODY_DEPTH: Final = MAX_JSON_DEPTH + 3
#: Digits (and sign) of the longest integer within a float's range (about 1.8e308).
_MAX_INT_DIGITS: Final = 310
_TOO_DEEP: Final = f"Body nests arrays and objects more than {_MAX_BODY_DEPTH} levels deep"
_EPOCH: Final = datetime(2024, 1, 1, tzinfo=UTC)
_NO_BACKOFF: Final = Backoff(initial=0, maximum=0)

ASGIMessage = dict[str, Any]

_log = logging.getLogger("inkit_async.testing")


@dataclass(frozen=True, slots=True)
class FakeRequest:
    """One request as the fake saw it. The token is not kept, only whether it matched."""

    method: str
    """``GET`` or ``POST`` (or whatever was sent)."""
    path: str
    """The path as sent, percent-encoding intact, without the query."""
    params: dict[str, str]
    """The query parameters."""
    json: object
    """The decoded JSON body, or ``None``."""
    authorized: bool
    """Whether the request carried the fake's token."""


@dataclass(slots=True)
class _Fault:
    status: int
    retry_after: float | None
    body: object
    delay: float


@dataclass(slots=True)
class _RateLimit:
    """A token bucket per API token: *burst* requests, refilled at *rate* per second."""

    rate: float
    burst: int
    retry_after: float | None
    buckets: dict[str, tuple[float, float]] = field(default_factory=dict[str, tuple[float, float]])

    def admit(self, token: str) -> bool:
        now = time.monotonic()
        level, then = self.buckets.get(token, (float(self.burst), now))
        level = min(float(self.burst), level + (now - then) * self.rate)
        admitted = level >= 1.0
        self.buckets[token] = (level - 1.0 if admitted else level, now)
        return admitted

    def refusal(self) -> _Answer:
        headers = {} if self.retry_after is None else {"retry-after": f"{self.retry_after:g}"}
        return _Answer(429, {"error": "Too many requests"}, headers)


@dataclass(slots=True)
class _Destination:
    count: int
    completed: int = 0
    failed: int = 0

    @property
    def in_progress(self) -> int:
        return self.count - self.completed - self.failed


@dataclass(slots=True)
class _Batch:
    id: str
    name: str | None
    created_at: datetime
    destinations: dict[str, _Destination]
    docs_per_poll: int
    flow: bool
    status: str | None = None  # forced by the test; else derived from the counters

    def status_now(self) -> str:
        if self.status is not None:
            return self.status
        if any(d.in_progress for d in self.destinations.values()):
            return "In Progress"
        count = sum(d.count for d in self.destinations.values())
        failed = sum(d.failed for d in self.destinations.values())
        return "Failed" if count and failed == count else "Completed"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status_now(),
            "total": max((d.count for d in self.destinations.values()), default=0),
            "created_at": self.created_at.isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "destinations": {
                name: {
                    "count": d.count,
                    "completed": d.completed,
                    "failed": d.failed,
                    "in_progress": d.in_progress,
                }
                for name, d in self.destinations.items()
            },
        }

    def advance(self, documents: int) -> None:
        for destination in self.destinations.values():
            step = min(documents, destination.in_progress)
            destination.completed += step


@dataclass(slots=True)
class _Answer:
    status: int
    body: object = None
    headers: dict[str, str] = field(default_factory=dict[str, str])

    def encode(self) -> tuple[bytes, list[tuple[str, str]]]:
        payload = b"" if self.body is None else json.dumps(self.body).encode()
        headers = [("content-type", "application/json"), ("content-length", str(len(payload)))]
        headers.extend(self.headers.items())
        return payload, headers


def _error(status: int, message: str) -> _Answer:
    return _Answer(status, {"error": message})


class FakeInkit:
    """An in-memory Inkit batch API for tests and demos.

    Args:
        token: The API token the fake accepts (default ``"fake-inkit-token"``).
        docs_per_poll: Documents each destination completes per ``GET`` of a batch
            (default 1; 0 freezes batches until the test calls ``advance``).
        seed: Seed for the generated ids, for reproducible runs.

    Raises:
        TypeError, ValueError: *docs_per_poll* is not an ``int`` >= 0.
    """

    def __init__(
        self,
        *,
        token: str = DEFAULT_FAKE_TOKEN,
        docs_per_poll: int = 1,
        seed: int | None = None,
    ) -> None:
        """Start empty: no batches, no faults, no requests."""
        self.token = token
        self.docs_per_poll = _check_count("docs_per_poll", docs_per_poll)
        self.requests: list[FakeRequest] = []
        """Every request received, oldest first."""
        self._random = random.Random(seed)  # noqa: S311 - ids, not secrets
        self._batches: dict[str, _Batch] = {}
        self._faults: list[_Fault] = []
        self._limit: _RateLimit | None = None
        self.refused = 0
        """How many requests the rate limit (``limit_rate``) answered with 429."""

    def __repr__(self) -> str:
        """Say how many batches the fake holds, never the token."""
        return f"<FakeInkit batches={len(self._batches)} requests={len(self.requests)}>"

    # -- what a test sets up --------------------------------------------------------------

    def add_batch(
        self,
        *,
        name: str | None = None,
        destinations: Mapping[str, int] | None = None,
        flow: bool = False,
        created_at: datetime | None = None,
        docs_per_poll: int | None = None,
        batch_id: str | None = None,
    ) -> str:
        """Add a batch and return its id.

        Args:
            name: The batch's name.
            destinations: Documents per destination (default ``{"inkit_storage": 1}``);
                all start in progress.
            flow: Make a flow batch (``fb_...``, served under ``/invoke/batch``).
            created_at: Its creation time (default: one second after the previous batch).
            docs_per_poll: This batch's own pace (default: the fake's).
            batch_id: A chosen id instead of a generated one.

        Raises:
            TypeError: *name* or *batch_id* is not a string (or ``None``), or a count is
                not an ``int``.
            ValueError: *batch_id* is taken, a destination name is empty, or a count is
                below 0.
        """
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str or None, got {type(name).__name__}")
        if batch_id is not None and not isinstance(batch_id, str):
            raise TypeError(f"batch_id must be a str or None, got {type(batch_id).__name__}")
        if batch_id in self._batches:
            raise ValueError(f"a batch with the id {batch_id!r} exists already")
        counts: dict[str, int] = {}
        for destination, count in (destinations or {"inkit_storage": 1}).items():
            key: object = destination  # checked: a test may pass anything
            if not isinstance(key, str) or not key:
                raise ValueError(f"a destination name must be a non-empty str, got {key!r}")
            counts[key] = _check_count(f"destinations[{key!r}]", count)
        pace = (
            self.docs_per_poll
            if docs_per_poll is None
            else _check_count("docs_per_poll", docs_per_poll)
        )
        new_id = batch_id or self._new_id("fb_" if flow else "rb_")
        if created_at is None:
            created_at = _EPOCH + timedelta(seconds=len(self._batches))
        self._batches[new_id] = _Batch(
            id=new_id,
            name=name,
            created_at=created_at.astimezone(UTC),
            destinations={dest: _Destination(count=count) for dest, count in counts.items()},
            docs_per_poll=pace,
            flow=flow,
        )
        return new_id

    def batch_json(self, batch_id: str) -> dict[str, Any]:
        """The batch as the API would return it now (without advancing it)."""
        return self._batches[batch_id].to_json()

    def batch_ids(self) -> list[str]:
        """Every batch id, document and flow, in the order they were added."""
        return list(self._batches)

    def advance(self, batch_id: str, documents: int = 1) -> None:
        """Complete up to *documents* more documents in each destination of a batch."""
        self._batches[batch_id].advance(_check_count("documents", documents))

    def complete(self, batch_id: str) -> None:
        """Finish a batch: every document still in progress completes."""
        batch = self._batches[batch_id]
        batch.advance(max((d.count for d in batch.destinations.values()), default=0))

    def fail(self, batch_id: str, documents: int | None = None) -> None:
        """Fail *documents* in-progress documents per destination (default: all of them)."""
        if documents is not None:
            _check_count("documents", documents)
        for destination in self._batches[batch_id].destinations.values():
            step = destination.in_progress if documents is None else documents
            destination.failed += min(step, destination.in_progress)

    def set_status(self, batch_id: str, status: str | None) -> None:
        """Force the status string the API reports (``None``: derive it from the counters)."""
        if status is not None and not isinstance(status, str):
            raise TypeError(f"status must be a str or None, got {type(status).__name__}")
        self._batches[batch_id].status = status

    def fail_next(
        self,
        count: int,
        status: int,
        *,
        retry_after: float | None = None,
        body: object = None,
        delay: float = 0.0,
    ) -> None:
        """Answer the next *count* requests with *status* (and a ``Retry-After``, a body).

        The body defaults to ``{"error": "Injected fault"}``; *delay* seconds pass before
        each of those answers.

        Raises:
            TypeError: *body* is not something ``json.dumps`` can encode, or a number
                has the wrong type.
            ValueError: *count* is negative, *status* is not 100 to 599, or
                *retry_after* or *delay* is not a finite number >= 0.
        """
        count = check_int("count", count, minimum=0)
        status = check_int("status", status, minimum=100, maximum=599)
        retry_after = check_optional_seconds("retry_after", retry_after)
        delay = check_seconds("delay", delay)
        default = {"error": "Injected fault"}
        json.dumps(body)  # a body that cannot be sent fails here, not at the request
        fault = _Fault(status, retry_after, default if body is None else body, delay)
        self._faults.extend(fault for _ in range(count))

    def limit_rate(
        self, rate: float | None, *, burst: int = 1, retry_after: float | None = None
    ) -> None:
        """Refuse requests beyond *rate* per second with 429, per token, as a real API does.

        Each token (the ``X-Inkit-API-Token`` each request presents) has a bucket of
        *burst* requests, refilled at *rate* per second; a request that finds it empty
        is answered 429 (with ``Retry-After: <retry_after>`` when given) and counted in
        ``refused``. ``limit_rate(None)`` lifts the limit. Injected faults come first.

        Raises:
            TypeError: A number has the wrong type.
            ValueError: *rate* is not a finite number > 0, *burst* is below 1, or
                *retry_after* is not a finite number >= 0.
        """
        if rate is None:
            self._limit = None
            return
        self._limit = _RateLimit(
            rate=check_number("rate", rate, above=True),
            burst=check_int("burst", burst, minimum=1),
            retry_after=check_optional_seconds("retry_after", retry_after),
        )

    # -- how a test talks to it ------------------------------------------------------------

    def client(
        self, *, api_token: str | None = None, **options: Unpack[OptionArguments]
    ) -> AsyncInkit:
        """An ``AsyncInkit`` wired to this fake in process, no sockets.

        The token defaults to the fake's; pass ``api_token="wrong"`` to see a 401. Every
        other keyword is an ``AsyncInkit`` option, with one default of its own: retries
        happen at once (``Backoff(initial=0, maximum=0)``), so injected faults cost a
        test no time. Closing the client closes everything it created.
        """
        if options.get("backoff") is None:
            options["backoff"] = _NO_BACKOFF
        return AsyncInkit(
            self.token if api_token is None else api_token,
            base_url=FAKE_BASE_URL,
            transport=_FakeTransport(self),
            **options,
        )

    @property
    def app(self) -> ASGIApp:
        """The fake as an ASGI 3 application, for serving it over a real socket."""
        return ASGIApp(self)

    # -- the one handler -------------------------------------------------------------------

    async def handle(
        self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Answer one request with ``(status, headers, body)``; both adapters call this.

        Whatever comes in gets an HTTP answer: bad input a 4xx with a message, and a
        fault in the fake itself a 500 (logged with its traceback on the
        ``inkit_async.testing`` logger), never an exception, so the in-process client
        and a server in front of ``app`` see the same thing.
        """
        params = dict(parse_qsl(query, keep_blank_values=True))
        decoded = _decode_body(body)
        token = headers.get("x-inkit-api-token")
        authorized = token == self.token
        recorded = None if isinstance(decoded, _BadBody) else decoded
        self.requests.append(FakeRequest(method, path, params, recorded, authorized))
        try:
            answer = await self._answer(method, path, params, decoded, token=token)
        except Exception as exc:  # noqa: BLE001 - any fault at all is the server's
            # A bug in the fake (or state a test broke) is the server's fault, as on a
            # real server: a 500, not an exception that would reach only the in-process
            # client and differ from what a socket client sees.
            _log.exception("FakeInkit failed to answer %s %s", method, path)
            answer = _error(500, f"FakeInkit failed: {type(exc).__name__} (see its log)")
        payload, answer_headers = answer.encode()
        return answer.status, answer_headers, payload

    async def _answer(  # noqa: PLR0911 - one return per route reads best
        self, method: str, path: str, params: dict[str, str], body: object, *, token: str | None
    ) -> _Answer:
        if self._faults:
            fault = self._faults.pop(0)
            if fault.delay:
                await asyncio.sleep(fault.delay)
            extra = {} if fault.retry_after is None else {"retry-after": f"{fault.retry_after:g}"}
            return _Answer(fault.status, fault.body, extra)
        if self._limit is not None and not self._limit.admit(token or ""):
            self.refused += 1
            return self._limit.refusal()
        if token != self.token:
            return _error(401, "Invalid or missing API token")
        segments = [unquote(part) for part in path.split("/")[1:]]
        if segments[:1] != ["v1"]:
            return _error(404, "Not found")
        match segments[1:]:
            case ["batch"]:
                return self._collection(method, params, body, flow=False)
            case ["invoke", "batch"]:
                return self._collection(method, params, body, flow=True)
            case ["batch", batch_id] | ["invoke", "batch", batch_id] if method == "GET":
                return self._get(batch_id, flow=segments[1] == "invoke")
            case ["batch", _] | ["invoke", "batch", _]:
                return _error(405, f"Method {method} not allowed")
            case _:
                return _error(404, "Not found")

    def _get(self, batch_id: str, *, flow: bool) -> _Answer:
        batch = self._batches.get(batch_id)
        if batch is None or batch.flow != flow:
            return _error(404, f"Batch {batch_id} not found")
        answer = _Answer(200, batch.to_json())
        batch.advance(batch.docs_per_poll)  # the next poll sees progress
        return answer

    def _collection(
        self, method: str, params: dict[str, str], body: object, *, flow: bool
    ) -> _Answer:
        if method == "GET":
            return self._list(params, flow=flow)
        if method == "POST" and not flow:
            return self._create(body)
        return _error(405, f"Method {method} not allowed")

    def _list(self, params: dict[str, str], *, flow: bool) -> _Answer:
        query = _checked_list_query(params)
        if isinstance(query, str):
            return _error(400, query)
        page, size, sort = query
        field_name = sort.removeprefix("-")
        descending = sort.startswith("-")
        batches = [b for b in self._batches.values() if b.flow == flow]
        items = [item for item in (b.to_json() for b in batches) if _matches(item, params)]
        # Ascending, then reversed for descending: a null sorts after every value going
        # up and before every value going down, as PostgreSQL orders NULL by default.
        items.sort(key=lambda item: _sort_key(item[field_name]))
        if descending:
            items.reverse()
        page_count = (len(items) + size - 1) // size
        start = (page - 1) * size
        return _Answer(
            200,
            {
                "items": items[start : start + size],
                "metadata": {
                    "pagination": {
                        "current_page": page,
                        "page_count": page_count,
                        "page_size": size,
                        "total_count": len(items),
                        "next_page": page + 1 if page < page_count else None,
                        "prev_page": page - 1 if page > 1 else None,
                    },
                    "sort": {"field": field_name, "descending": descending},
                },
            },
        )

    def _create(self, body: object) -> _Answer:
        if isinstance(body, _BadBody):
            return _error(400, body.problem)
        checked = _checked_create(body)
        if isinstance(checked, str):
            return _error(422, checked)
        name, counts = checked
        return _Answer(201, {"id": self.add_batch(name=name, destinations=counts)})

    def _new_id(self, prefix: str) -> str:
        while True:
            candidate = prefix + "".join(self._random.choices(_ALPHABET, k=22))
            if candidate not in self._batches:
                return candidate


def _check_count(name: str, value: object) -> int:
    """*value* when it is a whole number of documents (an ``int`` >= 0), else raise."""
    return check_int(name, value, minimum=0)


# -- what comes in: every check of a request, in one place ---------------------------------


@dataclass(frozen=True, slots=True)
class _BadBody:
    """A request body that is not JSON the fake can take, and why."""

    problem: str


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON value")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is out of range")
    return value


def _float_range_int(text: str) -> int:
    # The length check first: converting thousands of digits costs quadratic time, and
    # Python's own digit limit is a process-wide setting a test may have changed.
    if len(text) > _MAX_INT_DIGITS or abs(value := int(text)) > sys.float_info.max:
        raise ValueError(f"the number {text[:40]} is out of range")
    return value


def _decode_body(body: bytes) -> object:
    """The body's JSON, or a ``_BadBody`` saying why there is none.

    JSON as RFC 8259 defines it: UTF-8 (no other encoding is guessed), no ``NaN`` or
    ``Infinity``, numbers within a float's range (integers too: what most JSON
    implementations can hold), strings of whole Unicode characters
    (no lone surrogate escapes), and at most ``_MAX_BODY_DEPTH`` levels of nesting.
    """
    if not body:
        return _BadBody("Body is empty: send a JSON object")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _BadBody(f"Body is not UTF-8 (byte {exc.start})")
    try:
        data = json.loads(
            text,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            parse_int=_float_range_int,
        )
    except RecursionError:
        return _BadBody(_TOO_DEEP)
    except ValueError as exc:
        return _BadBody(f"Body is not valid JSON: {exc}")
    problem = _json_problem(data)
    return data if problem is None else _BadBody(problem)


def _json_problem(data: object) -> str | None:
    """What makes decoded JSON unfit (a lone surrogate, too deep), or ``None``."""
    stack: list[tuple[object, int]] = [(data, 0)]
    while stack:  # a loop, not recursion: the walk itself cannot run out of stack
        value, depth = stack.pop()
        if isinstance(value, str):
            if not value.isascii():
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError:
                    return "Body is not valid JSON: a string holds a lone surrogate"
        elif isinstance(value, dict | list):
            if depth >= _MAX_BODY_DEPTH:  # *value* is level depth + 1
                return _TOO_DEEP
            if isinstance(value, dict):
                members = cast("dict[str, object]", value)
                stack.extend((key, depth + 1) for key in members)
                stack.extend((child, depth + 1) for child in members.values())
            else:
                stack.extend((child, depth + 1) for child in cast("list[object]", value))
    return None


def _checked_list_query(params: dict[str, str]) -> tuple[int, int, str] | str:
    """A listing's page, page size and sort, or what is wrong with the query.

    Parameters the API does not document are ignored, as servers do.
    """
    page = _whole_number(params.get("page", "1"))
    if page is None or page < 1:
        return "page must be a whole number, 1 or more"
    size = _whole_number(params.get("page_size", str(_DEFAULT_PAGE_SIZE)))
    if size is None or not 1 <= size <= _MAX_PAGE_SIZE:
        return f"page_size must be a whole number from 1 to {_MAX_PAGE_SIZE}"
    sort = params.get("sort", "-created_at")
    if sort.removeprefix("-") not in _SORT_FIELDS:
        return (
            f"Cannot sort by {sort[:100]!r}: sort is one of {', '.join(_SORT_FIELDS)}, "
            "with an optional leading '-' for descending"
        )
    status = params.get("destination_status")
    if status and status not in _DESTINATION_STATES:
        return f"destination_status must be one of {', '.join(_DESTINATION_STATES)}"
    return page, size, sort


def _whole_number(text: str) -> int | None:
    return int(text) if _WHOLE_NUMBER.fullmatch(text) else None


def _sort_key(value: object) -> tuple[int, Any]:
    """Where a field's value goes in an ascending sort; any two keys compare.

    Numbers come first, then strings (``""`` before every other), then null, which a
    batch's ``name`` may be: each kind is compared only with its own.
    """
    if value is None:
        return (2, 0)
    if isinstance(value, int | float):
        return (0, value)
    return (1, str(value))


def _matches(item: dict[str, Any], params: dict[str, str]) -> bool:
    search = params.get("search")
    if search and search.lower() not in f"{item['name'] or ''} {item['id']}".lower():
        return False
    destinations: dict[str, dict[str, int]] = item["destinations"]
    name = params.get("destination_name")
    if name and name not in destinations:
        return False
    status = params.get("destination_status")
    if status:
        chosen = [destinations[name]] if name else list(destinations.values())
        if not any(counters[status] > 0 for counters in chosen):
            return False
    return True


def _checked_create(body: object) -> tuple[str | None, dict[str, int]] | str:
    """The new batch's name and documents per destination, or what is wrong with *body*.

    The documented rules: an object with ``template_id`` (a non-empty string),
    ``renders`` (a non-empty list) and an optional ``name`` (a string or null).
    """
    if not isinstance(body, dict):
        return "Body must be a JSON object"
    fields = cast("dict[str, object]", body)
    template_id = fields.get("template_id")
    if not isinstance(template_id, str) or not template_id:
        return "template_id is required: a non-empty string"
    name = fields.get("name")
    if name is not None and not isinstance(name, str):
        return "name must be a string"
    renders = fields.get("renders")
    if not isinstance(renders, list) or not renders:
        return "renders must be a non-empty list"
    counts: dict[str, int] = {}
    for index, render in enumerate(cast("list[object]", renders)):
        destinations = _render_destinations(render, f"renders[{index}]")
        if isinstance(destinations, str):
            return destinations
        for destination in destinations:
            counts[destination] = counts.get(destination, 0) + 1
    return name, counts


def _render_destinations(render: object, where: str) -> list[str] | str:  # noqa: PLR0911
    """Where one render goes, or what is wrong with it.

    A render is an object with ``merge_parameters`` (an object), optional ``name`` and
    ``description`` (strings or null) and optional ``destinations``: an object keyed by
    destination name (non-empty), each value an object of that destination's settings.
    Without destinations (absent, null or ``{}``) the document goes to Inkit Storage.
    """
    if not isinstance(render, dict):
        return f"{where} must be an object"
    fields = cast("dict[str, object]", render)
    if not isinstance(fields.get("merge_parameters"), dict):
        return f"{where}.merge_parameters is required: an object"
    for key in ("name", "description"):
        value = fields.get(key)
        if value is not None and not isinstance(value, str):
            return f"{where}.{key} must be a string"
    destinations = fields.get("destinations")
    if destinations is None:
        return ["inkit_storage"]
    if not isinstance(destinations, dict):
        return f"{where}.destinations must be an object keyed by destination name"
    settings = cast("dict[str, object]", destinations)
    for destination, value in settings.items():
        if not destination:
            return f"{where}.destinations: a destination name must not be empty"
        if not isinstance(value, dict):
            return f"{where}.destinations.{destination[:100]} must be an object"
    return list(settings) or ["inkit_storage"]


class ASGIApp:
    """``FakeInkit.app``: the fake as an ASGI 3 application (any ASGI server can serve it).

    A class with an ``async __call__``, so servers that inspect the app (uvicorn) see
    ASGI 3.
    """

    __slots__ = ("_fake",)

    def __init__(self, fake: FakeInkit) -> None:
        """Serve *fake*."""
        self._fake = fake

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[ASGIMessage]],
        send: Callable[[ASGIMessage], Awaitable[None]],
    ) -> None:
        """Serve one ASGI connection (HTTP or lifespan; a WebSocket is refused)."""
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] == "websocket":
            # The API has no WebSocket: refuse the handshake (servers answer it 403).
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            return
        chunks: list[bytes] = []  # joined once: += would copy the body for every chunk
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client went before its body arrived: no one to answer
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        raw_path = scope.get("raw_path") or scope["path"].encode()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        status, answer_headers, payload = await self._fake.handle(
            scope["method"],
            raw_path.decode("latin-1"),
            scope.get("query_string", b"").decode("latin-1"),
            headers,
            body,
        )
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.encode(), v.encode()) for k, v in answer_headers],
            }
        )
        await send({"type": "http.response.body", "body": payload})


class _FakeTransport(InProcessTransport):
    """Hands requests to the fake's handler in process (``LocalSender`` sends to it)."""

    def __init__(self, fake: FakeInkit) -> None:
        self._fake = fake

    async def answer(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Answer one request through the fake's one handler."""
        path, _, query = target.partition("?")
        return await self._fake.handle(method, path, query, headers, body)
