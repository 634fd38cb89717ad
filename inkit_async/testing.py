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
other methods. Renders, documents, templates, folders and flow invocations are served
as ``_fake_resources.py`` says; a render's PDF (``GET /v1/render/{id}/pdf``) and a
document's file (``GET /v1/download/{id}``) answer 404 while the render is in progress
(``render_delay``), then ``FAKE_PDF``. Each batch's counters advance as it is polled
(``docs_per_poll`` documents per destination per ``GET``), or when a test says so (``advance``,
``complete``, ``fail``). It can misbehave as a network does: ``latency`` before each
answer, and scripted steps per batch id (``script``) or for whatever comes next
(``script_next``, ``fail_next``): a status (with ``Retry-After``), a dropped or reset
connection, an answer that never comes. ``limit_rate`` makes the fake refuse requests
beyond a rate with 429, as a rate-limited API does; ``requests`` records what came in,
headers included (credentials redacted).

Bad input gets the answer an API gives, never a Python exception: a body that is not
JSON (empty, not UTF-8, ``NaN``, a number beyond a float's range, nested more than 67
levels) is a 400, a JSON body against the documented create rules a 422, a bad
``page``, ``page_size``, ``sort`` or ``destination_status`` a 400; each with
``{"error": "..."}`` saying what is wrong. A fault in the fake itself is a 500 (and a
log record), the same in process and over a socket.

``fake.client()`` is an ``AsyncInkit`` wired to the fake in process (no sockets);
``fake.app`` is an ASGI application, so any ASGI server can serve the same fake over a
real socket; ``FakeServer`` serves it with uvicorn in a thread of its own. Both go
through one handler, so they behave the same: the handler decides, and each carrier
expresses a dropped, reset or hanging connection in its own terms (a closed socket, a
TCP reset, no answer; in process, the transport failure the SDK's sender would report).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import math
import random
import re
import socket
import string
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Self, Unpack, cast
from urllib.parse import parse_qsl, unquote

from . import _fake_resources
from ._client import AsyncInkit
from ._constants import MAX_JSON_DEPTH
from ._fake_resources import FakeResources, File, Listed
from ._retry import Backoff
from ._senders import InProcessTransport
from ._validate import check_int, check_number, check_optional_seconds, check_seconds
from ._wire import TransportFailure

if TYPE_CHECKING:
    from collections.abc import Awaitable, Mapping, MutableMapping
    from types import TracebackType

    import uvicorn

    from ._config import OptionArguments

__all__ = [
    "ASGIApp",
    "Drop",
    "FakeInkit",
    "FakeRequest",
    "FakeServer",
    "Hang",
    "Latency",
    "Reset",
    "Respond",
    "Step",
]

#: The token ``FakeInkit()`` accepts unless given another.
DEFAULT_FAKE_TOKEN: Final = "fake-inkit-token"  # noqa: S105 - a fake's well-known token
#: What the fake serves as every render's PDF and every document's file: a valid PDF
#: of one page, a few hundred bytes (``GET /render/{id}/pdf``, ``GET /download/{id}``).
FAKE_PDF: Final[bytes] = _fake_resources.FAKE_PDF
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
_INJECTED: Final = {"error": "Injected fault"}
#: Headers whose values ``FakeRequest.headers`` never keeps: the token, and any other
#: credential a caller's own client might add.
_SECRET_HEADERS: Final = frozenset(
    {"x-inkit-api-token", "authorization", "proxy-authorization", "cookie"}
)
_REDACTED: Final = "[redacted]"
#: What the SDK's sender reports when a server closes a connection without answering,
#: and when it resets one: the in-process carrier raises the same.
_DROPPED: Final = ("RemoteProtocolError", "Server disconnected")
_RESET: Final = ("ReadError", "Connection reset by peer")
_UVICORN_MISSING: Final = (
    "FakeServer serves the fake with uvicorn, which is not installed: "
    "pip install 'inkit-async[testing]'"
)

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
    headers: dict[str, str] = field(default_factory=dict[str, str])
    """Every header as received, names lower-cased; a credential's value (the token,
    ``Authorization``, ``Proxy-Authorization``, ``Cookie``) reads ``[redacted]``."""


# -- scripted steps: what the fake does with one request ------------------------------------


@dataclass(frozen=True, slots=True)
class Respond:
    """Answer with *status*, after *delay* seconds.

    The body defaults to ``{"error": "Injected fault"}``; a ``Retry-After`` header is
    sent when *retry_after* is given.

    Raises:
        TypeError: *body* is not something ``json.dumps`` can encode, or a number has
            the wrong type.
        ValueError: *status* is not 100 to 599, or *retry_after* or *delay* is not a
            finite number >= 0.
    """

    status: int
    retry_after: float | None = None
    body: object = None
    delay: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "status", check_int("status", self.status, minimum=100, maximum=599)
        )
        retry_after = check_optional_seconds("retry_after", self.retry_after)
        object.__setattr__(self, "retry_after", retry_after)
        object.__setattr__(self, "delay", check_seconds("delay", self.delay))
        json.dumps(self.body)  # a body that cannot be sent fails here, not at the request

    def answer(self) -> _Answer:
        """The answer this step gives."""
        extra = {} if self.retry_after is None else {"retry-after": f"{self.retry_after:g}"}
        return _Answer(self.status, _INJECTED if self.body is None else self.body, extra)


@dataclass(frozen=True, slots=True)
class _Delayed:
    """A step that acts on the connection after *delay* seconds (checked when made)."""

    delay: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "delay", check_seconds("delay", self.delay))


@dataclass(frozen=True, slots=True)
class Drop(_Delayed):
    """Close the connection without answering, after *delay* seconds.

    Over a socket the server closes it; in process the call meets the transport failure
    the SDK's sender reports for that (``RemoteProtocolError``). Over a socket, aiohttp
    itself sends a ``GET`` again once when a kept-alive connection is closed under it, so
    the SDK may not see a single drop: script two to make an attempt fail.

    Raises:
        TypeError, ValueError: *delay* is not a finite number >= 0.
    """


@dataclass(frozen=True, slots=True)
class Reset(_Delayed):
    """Reset the connection (a TCP RST) without answering, after *delay* seconds.

    In process the call meets the transport failure the SDK's sender reports for a
    reset (``ReadError``).

    Raises:
        TypeError, ValueError: *delay* is not a finite number >= 0.
    """


@dataclass(frozen=True, slots=True)
class Hang:
    """Never answer: the client's own timeout ends the wait (in process too).

    Over a socket the server holds the connection until the client closes it.
    """


#: One scripted step: ``200`` answers as usual, any other status is ``Respond(status)``.
Step = int | Respond | Drop | Reset | Hang
#: ``latency``: seconds before every answer, or a function of the request that says.
Latency = float | Callable[[FakeRequest], float]
_Scripted = Respond | Drop | Reset | Hang


def _checked_steps(steps: object) -> list[_Scripted | None]:
    """*steps* as the fake keeps them (``None``: answer as usual), once each is checked."""
    if isinstance(steps, str | bytes) or not isinstance(steps, Iterable):
        raise TypeError(f"steps must be a list of steps, got {type(steps).__name__}")
    checked: list[_Scripted | None] = []
    for index, step in enumerate(cast("Iterable[object]", steps)):
        if isinstance(step, Respond | Drop | Reset | Hang):
            checked.append(step)
            continue
        status = check_int(
            f"steps[{index}]",
            step,
            minimum=100,
            maximum=599,
            what="a status (int) or Respond, Drop, Reset or Hang",
        )
        checked.append(None if status == 200 else Respond(status))
    return checked


def _checked_latency(latency: object) -> Latency:
    if callable(latency):
        return cast("Callable[[FakeRequest], float]", latency)
    return check_seconds("latency", latency)


class _Cut(Exception):  # noqa: N818 - not an error: the fake's decision to give no answer
    """Raised by ``FakeInkit.handle`` when a step gives no answer; each carrier expresses it."""

    def __init__(self, step: Drop | Reset | Hang) -> None:
        super().__init__(type(step).__name__)
        self.step = step


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
    """JSON (``None``: no body), or a ``File`` sent as it is (a PDF)."""
    headers: dict[str, str] = field(default_factory=dict[str, str])

    def encode(self) -> tuple[bytes, list[tuple[str, str]]]:
        if isinstance(self.body, File):
            payload, kind = self.body.content, self.body.content_type
        else:
            payload = b"" if self.body is None else json.dumps(self.body).encode()
            kind = "application/json"
        headers = [("content-type", kind), ("content-length", str(len(payload)))]
        headers.extend(self.headers.items())
        return payload, headers


def _error(status: int, message: str) -> _Answer:
    return _Answer(status, {"error": message})


class FakeInkit:
    """An in-memory Inkit batch API for tests and demos.

    Its state is guarded by a lock: a test may set it up from its own thread while a
    server (``FakeServer``) answers requests from another. Every answer carries an
    ``x-request-id`` (``req_fake_1``, ``req_fake_2``, ... in the order answered), unless
    a scripted ``Respond`` sets its own, so ``error.request_id`` and
    ``response_of(record).request_id`` can be tested.

    Args:
        token: The API token the fake accepts (default ``"fake-inkit-token"``).
        docs_per_poll: Documents each destination completes per ``GET`` of a batch
            (default 1; 0 freezes batches until the test calls ``advance``).
        seed: Seed for the generated ids, for reproducible runs.
        latency: Seconds before every answer, or a function of the ``FakeRequest``
            that returns them (see ``set_latency``).
        render_delay: Seconds a render (``POST /render``, ``add_render``) stays
            ``In Progress`` before it is ``Completed`` (default 0: at once).

    Raises:
        TypeError, ValueError: *docs_per_poll* is not an ``int`` >= 0, *latency* is
            neither a finite number >= 0 nor callable, or *render_delay* is not a
            finite number >= 0.
    """

    def __init__(
        self,
        *,
        token: str = "fake-inkit-token",  # noqa: S107 - DEFAULT_FAKE_TOKEN, as the reference shows it
        docs_per_poll: int = 1,
        seed: int | None = None,
        latency: Latency = 0.0,
        render_delay: float = 0.0,
    ) -> None:
        """Start empty: no batches, no faults, no requests."""
        self.token = token
        self.docs_per_poll = _check_count("docs_per_poll", docs_per_poll)
        self._latency = _checked_latency(latency)
        self.requests: list[FakeRequest] = []
        """Every request received, oldest first."""
        self._random = random.Random(seed)  # noqa: S311 - ids, not secrets
        self._lock = threading.RLock()  # a server thread answers while the test sets up
        self._answered = itertools.count(1)  # each answer's request id: req_fake_1, ...
        self._batches: dict[str, _Batch] = {}
        self._next: list[_Scripted | None] = []
        self._scripts: dict[str, list[_Scripted | None]] = {}
        self._limit: _RateLimit | None = None
        self.refused = 0
        """How many requests the rate limit (``limit_rate``) answered with 429."""
        # Renders, documents, templates, folders and flow invocations (_fake_resources.py).
        self._resources = FakeResources(self._new_id, check_seconds("render_delay", render_delay))

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
        with self._lock:
            if batch_id in self._batches:
                raise ValueError(f"a batch with the id {batch_id!r} exists already")
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

    def add_template(self, *, name: str = "template", source: str = "html") -> str:
        """Add a template (served at ``/template``) and return its id (``tmpl_...``)."""
        with self._lock:
            return self._resources.add_template(name=name, source=source)

    def add_folder(self, *, name: str = "folder", description: str | None = None) -> str:
        """Add a private folder (served at ``/folder``) and return its id (``fold_...``)."""
        with self._lock:
            return self._resources.add_folder(name=name, description=description)

    def add_render(
        self,
        *,
        template_id: str | None = None,
        name: str | None = None,
        merge_parameters: Mapping[str, Any] | None = None,
    ) -> str:
        """Add a render, as ``POST /render`` would, and return its id (``rend_...``).

        It goes to Inkit Storage: its document is served at ``/document``. It is
        ``In Progress`` for the fake's ``render_delay`` seconds, then ``Completed``.
        """
        with self._lock:
            render_id, _ = self._resources.add_render(
                template_id=template_id,
                name=name,
                merge_parameters=dict(merge_parameters or {}),
            )
            return render_id

    def complete_render(self, render_id: str) -> None:
        """Make a render (and its document) ``Completed`` now, whatever the delay left."""
        with self._lock:
            self._resources.complete_render(render_id)

    def document_ids(self, render_id: str | None = None) -> list[str]:
        """The ids of the documents in Inkit Storage (of one render, when given)."""
        with self._lock:
            return [
                document_id
                for document_id, document in self._resources.documents.items()
                if render_id is None or document["render_id"] == render_id
            ]

    def batch_json(self, batch_id: str) -> dict[str, Any]:
        """The batch as the API would return it now (without advancing it)."""
        with self._lock:
            return self._batches[batch_id].to_json()

    def batch_ids(self) -> list[str]:
        """Every batch id, document and flow, in the order they were added."""
        with self._lock:
            return list(self._batches)

    def advance(self, batch_id: str, documents: int = 1) -> None:
        """Complete up to *documents* more documents in each destination of a batch."""
        documents = _check_count("documents", documents)
        with self._lock:
            self._batches[batch_id].advance(documents)

    def complete(self, batch_id: str) -> None:
        """Finish a batch: every document still in progress completes."""
        with self._lock:
            batch = self._batches[batch_id]
            batch.advance(max((d.count for d in batch.destinations.values()), default=0))

    def fail(self, batch_id: str, documents: int | None = None) -> None:
        """Fail *documents* in-progress documents per destination (default: all of them)."""
        if documents is not None:
            _check_count("documents", documents)
        with self._lock:
            for destination in self._batches[batch_id].destinations.values():
                step = destination.in_progress if documents is None else documents
                destination.failed += min(step, destination.in_progress)

    def set_status(self, batch_id: str, status: str | None) -> None:
        """Force the status string the API reports (``None``: derive it from the counters)."""
        if status is not None and not isinstance(status, str):
            raise TypeError(f"status must be a str or None, got {type(status).__name__}")
        with self._lock:
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
        step = Respond(status, retry_after=retry_after, body=body, delay=delay)
        with self._lock:
            self._next.extend(step for _ in range(count))

    def script(self, batch_id: str, steps: Iterable[Step]) -> None:
        """Script the next requests for one batch: each takes the next step, in order.

        A request for the batch (``GET /batch/<id>`` or ``/invoke/batch/<id>``) takes
        one step: ``200`` answers as usual, another status is ``Respond(status)``, and
        ``Respond``, ``Drop``, ``Reset`` and ``Hang`` do as they say. Once the steps are
        used up, the batch is answered as usual. ``script(id, [503, 503, 200])``: two
        503s, then the batch. Steps given again are added after those left; steps from
        ``script_next`` (and ``fail_next``) come first. The id need not exist.

        Raises:
            TypeError: *batch_id* is not a string, *steps* not an iterable of steps, or
                a step is neither a status nor a step object.
            ValueError: *batch_id* is empty, or a status is not 100 to 599.
        """
        if not isinstance(batch_id, str):
            raise TypeError(f"batch_id must be a str, got {type(batch_id).__name__}")
        if not batch_id:
            raise ValueError("batch_id must not be empty")
        checked = _checked_steps(steps)
        with self._lock:
            self._scripts.setdefault(batch_id, []).extend(checked)

    def script_next(self, steps: Iterable[Step]) -> None:
        """Script the next requests, whatever they ask for: each takes the next step.

        The steps are those of ``script``; they come before any batch's own script and
        before the rate limit. ``fail_next(2, 503)`` is ``script_next([503, 503])``.

        Raises:
            TypeError: *steps* is not an iterable of steps, or a step is neither a
                status nor a step object.
            ValueError: A status is not 100 to 599.
        """
        checked = _checked_steps(steps)
        with self._lock:
            self._next.extend(checked)

    def set_latency(self, latency: Latency) -> None:
        """Wait *latency* seconds before every answer (0: answer at once).

        *latency* is a finite number >= 0, or a function called with each
        ``FakeRequest`` that returns one (for a served fake, on the server's thread). A
        step's own *delay* adds to it. A function that raises or returns something
        else is the fake's own fault: a 500, logged.

        Raises:
            TypeError, ValueError: *latency* is neither a finite number >= 0 nor callable.
        """
        checked = _checked_latency(latency)
        with self._lock:
            self._latency = checked

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
        limit = None
        if rate is not None:
            limit = _RateLimit(
                rate=check_number("rate", rate, above=True),
                burst=check_int("burst", burst, minimum=1),
                retry_after=check_optional_seconds("retry_after", retry_after),
            )
        with self._lock:
            self._limit = limit

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
        """Answer one request with ``(status, headers, body)``; both carriers call this.

        Whatever comes in gets an HTTP answer: bad input a 4xx with a message, and a
        fault in the fake itself a 500 (logged with its traceback on the
        ``inkit_async.testing`` logger), never an exception, so the in-process client
        and a server in front of ``app`` see the same thing. The one exception is a
        scripted step that gives no answer (``Drop``, ``Reset``, ``Hang``): it is
        raised as an internal signal, which each carrier turns into what a client
        would meet on a socket.
        """
        params = dict(parse_qsl(query, keep_blank_values=True))
        decoded = _decode_body(body)
        token = headers.get("x-inkit-api-token")
        request = FakeRequest(
            method,
            path,
            params,
            None if isinstance(decoded, _BadBody) else decoded,
            token == self.token,
            _recorded_headers(headers),
        )
        try:
            answer = await self._respond(request, decoded, token)
        except _Cut:
            raise
        except Exception as exc:  # noqa: BLE001 - any fault at all is the server's
            # A bug in the fake (or state a test broke) is the server's fault, as on a
            # real server: a 500, not an exception that would reach only the in-process
            # client and differ from what a socket client sees.
            _log.exception("FakeInkit failed to answer %s %s", method, path)
            answer = _error(500, f"FakeInkit failed: {type(exc).__name__} (see its log)")
        payload, answer_headers = answer.encode()
        if not any(name.lower() == "x-request-id" for name, _ in answer_headers):
            # As a real API's gateway does: errors and successes say which request it was.
            answer_headers.append(("x-request-id", f"req_fake_{next(self._answered)}"))
        return answer.status, answer_headers, payload

    async def _respond(self, request: FakeRequest, body: object, token: str | None) -> _Answer:
        """The answer to *request*: decided as it arrives, given after the latency."""
        with self._lock:
            self.requests.append(request)
            step = self._step_for(request.path)
            refusal = None
            if step is None and self._limit is not None and not self._limit.admit(token or ""):
                self.refused += 1
                refusal = self._limit.refusal()
            latency = self._latency
        wait = check_seconds("latency", latency(request) if callable(latency) else latency)
        if not isinstance(step, Hang | None):
            wait += step.delay
        if wait:
            await asyncio.sleep(wait)
        if isinstance(step, Drop | Reset | Hang):
            raise _Cut(step)
        if step is not None:
            return step.answer()
        if refusal is not None:
            return refusal
        with self._lock:  # the state as it is when the answer goes out
            return self._route(request.method, request.path, request.params, body, token=token)

    def _step_for(self, path: str) -> _Scripted | None:
        """The next scripted step for a request to *path* (``None``: answer as usual)."""
        if self._next:
            return self._next.pop(0)
        script = self._scripts.get(_batch_id_in(path) or "")
        if script:
            return script.pop(0)
        return None

    def _route(  # noqa: PLR0911 - one return per route reads best
        self, method: str, path: str, params: dict[str, str], body: object, *, token: str | None
    ) -> _Answer:
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
                return self._other_resource(method, segments[1:], params, body)

    def _other_resource(
        self, method: str, segments: list[str], params: dict[str, str], body: object
    ) -> _Answer:
        """Renders, documents, templates, folders and flows (``_fake_resources.py``)."""
        if method == "POST" and isinstance(body, _BadBody):
            return _error(400, body.problem)
        outcome = self._resources.route(method, segments, params, body)
        if outcome is None:
            return _error(404, "Not found")
        if isinstance(outcome, Listed):
            return self._paged(outcome.items, params, outcome.sort_fields)
        status, answer = outcome
        return _Answer(status, answer)

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
        query = _checked_list_query(params)  # before _matches reads the filters
        if isinstance(query, str):
            return _error(400, query)
        batches = [b for b in self._batches.values() if b.flow == flow]
        items = [item for item in (b.to_json() for b in batches) if _matches(item, params)]
        return self._paged(items, params, _SORT_FIELDS)

    def _paged(
        self, items: list[dict[str, Any]], params: dict[str, str], sort_fields: tuple[str, ...]
    ) -> _Answer:
        """One page of *items* in the API's envelope, as the query asks (batches' or not).

        ``search`` keeps the items whose name or id holds it; for batches, ``_matches``
        has applied it already, with the destination filters.
        """
        query = _checked_list_query(params, sort_fields)
        if isinstance(query, str):
            return _error(400, query)
        page, size, sort = query
        field_name = sort.removeprefix("-")
        descending = sort.startswith("-")
        search = params.get("search", "").lower()
        items = [
            item for item in items if search in f"{item.get('name') or ''} {item['id']}".lower()
        ]
        # Ascending, then reversed for descending: a null sorts after every value going
        # up and before every value going down, as PostgreSQL orders NULL by default.
        items.sort(key=lambda item: _sort_key(item.get(field_name)))
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


def _batch_id_in(path: str) -> str | None:
    """The batch id a request path names (``/v1/batch/<id>``, ``/v1/invoke/batch/<id>``)."""
    match [unquote(part) for part in path.split("/")[1:]]:
        case ["v1", "batch", batch_id] | ["v1", "invoke", "batch", batch_id]:
            return batch_id
        case _:
            return None


def _recorded_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """*headers* as ``FakeRequest`` keeps them: names lower-cased, credentials redacted."""
    kept: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        kept[key] = _REDACTED if key in _SECRET_HEADERS else value
    return kept


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


def _checked_list_query(
    params: dict[str, str], sort_fields: tuple[str, ...] = _SORT_FIELDS
) -> tuple[int, int, str] | str:
    """A listing's page, page size and sort (by one of *sort_fields*), or what is wrong.

    Parameters the API does not document are ignored, as servers do.
    """
    page = _whole_number(params.get("page", "1"))
    if page is None or page < 1:
        return "page must be a whole number, 1 or more"
    size = _whole_number(params.get("page_size", str(_DEFAULT_PAGE_SIZE)))
    if size is None or not 1 <= size <= _MAX_PAGE_SIZE:
        return f"page_size must be a whole number from 1 to {_MAX_PAGE_SIZE}"
    sort = params.get("sort", "-created_at")
    if sort.removeprefix("-") not in sort_fields:
        return (
            f"Cannot sort by {sort[:100]!r}: sort is one of {', '.join(sort_fields)}, "
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
        try:
            status, answer_headers, payload = await self._fake.handle(
                scope["method"],
                raw_path.decode("latin-1"),
                scope.get("query_string", b"").decode("latin-1"),
                headers,
                body,
            )
        except _Cut as cut:
            await _cut_connection(cut.step, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.encode(), v.encode()) for k, v in answer_headers],
            }
        )
        await send({"type": "http.response.body", "body": payload})


async def _cut_connection(
    step: Drop | Reset | Hang,
    receive: Callable[[], Awaitable[ASGIMessage]],
    send: Callable[[ASGIMessage], Awaitable[None]],
) -> None:
    """Give no answer over a socket, as *step* says.

    ASGI has no message for closing a connection unanswered, so the app reaches for the
    connection the server hands it: uvicorn's ``send`` belongs to a request cycle that
    holds the asyncio transport. Under a server that gives no way to it, the answer is
    started and cut short instead (the app raises, and servers close the connection).
    """
    if not isinstance(step, Hang):
        await _close_under(step, send)
    # Hold the request until the server has seen the connection go: at once after a
    # drop or a reset; for a hang, when the client gives up (or the server stops).
    while (await receive())["type"] != "http.disconnect":
        pass


async def _close_under(step: Drop | Reset, send: Callable[[ASGIMessage], Awaitable[None]]) -> None:
    """Close the connection under the request (a reset: with a TCP RST)."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if not isinstance(transport, asyncio.BaseTransport) or not hasattr(transport, "abort"):
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"2")],
            }
        )
        raise ConnectionAbortedError(
            f"FakeInkit: {type(step).__name__}() scripted, and this server gives the app no "
            "way to close the connection: the answer is cut short instead"
        )
    connection = cast("asyncio.Transport", transport)
    if isinstance(step, Reset):
        sock = connection.get_extra_info("socket")
        if sock is not None:  # closing with a zero linger time sends a TCP reset
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        connection.abort()
    else:
        connection.close()


class _FakeTransport(InProcessTransport):
    """Hands requests to the fake's handler in process (``LocalSender`` sends to it)."""

    def __init__(self, fake: FakeInkit) -> None:
        self._fake = fake

    async def answer(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Answer one request through the fake's one handler.

        A step that gives no answer is what the SDK's own sender would report for it on
        a socket: a dropped connection a ``RemoteProtocolError``, a reset a
        ``ReadError``; a hang waits until the client's timeout (or a cancellation)
        ends it.

        Raises:
            TransportFailure: A ``Drop`` or ``Reset`` step.
        """
        path, _, query = target.partition("?")
        try:
            return await self._fake.handle(method, path, query, headers, body)
        except _Cut as cut:
            if isinstance(cut.step, Hang):
                await asyncio.get_running_loop().create_future()  # never set
            kind, message = _RESET if isinstance(cut.step, Reset) else _DROPPED
            raise TransportFailure(kind, message) from None


class _Serving:
    """The ASGI app a ``FakeServer`` runs: whichever fake the server holds now."""

    __slots__ = ("fake",)

    def __init__(self, fake: FakeInkit) -> None:
        self.fake = fake

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[ASGIMessage]],
        send: Callable[[ASGIMessage], Awaitable[None]],
    ) -> None:
        await self.fake.app(scope, receive, send)


class FakeServer:
    """A ``FakeInkit`` served by uvicorn on 127.0.0.1, in a thread of its own.

    ```python
    with FakeServer(fake) as server:
        subprocess.run(["my-cli"], env={**os.environ, "INKIT_BASE_URL": server.url,
                                        "INKIT_API_TOKEN": server.token})
    ```

    The server runs its own event loop in its own thread, so it answers whatever the
    test does meanwhile: an async test on any event loop, a plain test that calls
    ``asyncio.run``, a child process. It listens on a free port, bound before uvicorn
    starts. ``server.fake`` may be swapped for another fake at any time: each request
    is answered by the one it holds when the request comes in. The pytest plugin's
    ``inkit_server`` fixture is one ``FakeServer`` for the session, given each test's
    fake. Needs uvicorn (``pip install 'inkit-async[testing]'``).

    Args:
        fake: The fake to serve.
        start_within: Seconds uvicorn may take to start (default 10).
        stop_within: Seconds it may take to stop (default 10).

    Raises:
        TypeError, ValueError: *start_within* or *stop_within* is not a finite
            number > 0.
    """

    def __init__(
        self, fake: FakeInkit, *, start_within: float = 10.0, stop_within: float = 10.0
    ) -> None:
        """Hold *fake*; nothing is started before ``start()`` (or ``with``)."""
        self._serving = _Serving(fake)
        self._start_within = check_seconds("start_within", start_within, above=True)
        self._stop_within = check_seconds("stop_within", stop_within, above=True)
        self._url: str | None = None
        self._sock: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    def __repr__(self) -> str:
        """Say where it serves, never the token."""
        return f"<FakeServer url={self._url!r} fake={self.fake!r}>"

    @property
    def fake(self) -> FakeInkit:
        """The fake that answers requests now."""
        return self._serving.fake

    @fake.setter
    def fake(self, fake: FakeInkit) -> None:
        if not isinstance(fake, FakeInkit):
            raise TypeError(f"fake must be a FakeInkit, got {type(fake).__name__}")
        self._serving.fake = fake

    @property
    def token(self) -> str:
        """The token the served fake accepts: ``INKIT_API_TOKEN`` for a client of it."""
        return self.fake.token

    @property
    def url(self) -> str:
        """The API root, ``http://127.0.0.1:<port>/v1``: ``INKIT_BASE_URL`` for a client.

        Raises:
            RuntimeError: The server is not running.
        """
        if self._url is None:
            raise RuntimeError("the FakeServer is not running: call start() or use `with`")
        return self._url

    def start(self) -> None:
        """Start serving; return once uvicorn listens.

        Raises:
            RuntimeError: uvicorn is not installed, the server runs already, or it
                failed to start or did not within *start_within* seconds.
        """
        if self._thread is not None:
            raise RuntimeError("the FakeServer runs already")
        try:
            import uvicorn  # noqa: PLC0415 - an optional dependency, needed only here
        except ImportError:
            raise RuntimeError(_UVICORN_MISSING) from None
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))  # bound here: nothing can take the port meanwhile
        port = int(sock.getsockname()[1])
        self._sock = sock
        # No logging set-up of uvicorn's own (log_config=None): the test's stays as it is.
        config = uvicorn.Config(
            self._serving,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=max(int(self._stop_within / 2), 1),
        )
        self._server = server = uvicorn.Server(config)
        thread = threading.Thread(
            target=self._run, args=(server, sock), name=f"FakeServer:{port}", daemon=True
        )
        self._thread = thread
        thread.start()
        deadline = time.monotonic() + self._start_within
        while not server.started:
            if not thread.is_alive():
                self._thread = self._sock = None
                sock.close()
                raise RuntimeError(f"uvicorn stopped before it started: {self._failure!r}")
            if time.monotonic() > deadline:
                self._cancel_everything()  # a start-up that hangs does not heed should_exit
                thread.join(self._stop_within)
                self._thread = self._sock = None
                sock.close()
                raise RuntimeError(f"uvicorn did not start within {self._start_within:g} s")
            time.sleep(0.005)
        self._url = f"http://127.0.0.1:{port}/v1"

    def _run(self, server: uvicorn.Server, sock: socket.socket) -> None:
        try:
            with asyncio.Runner() as runner:
                self._loop = runner.get_loop()
                runner.run(server.serve(sockets=[sock]))
        except BaseException as exc:  # noqa: BLE001 - reported by start() or stop()
            self._failure = exc

    def stop(self) -> None:
        """Stop serving: close every connection (ending hanging answers) and the socket.

        Idempotent.

        Raises:
            RuntimeError: uvicorn did not stop within *stop_within* seconds, or failed.
        """
        thread, server, loop = self._thread, self._server, self._loop
        if thread is None or server is None:
            return
        self._thread = None
        self._url = None
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop ended meanwhile
                loop.call_soon_threadsafe(_close_connections, server)
        server.should_exit = True
        thread.join(self._stop_within)
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if thread.is_alive():
            self._cancel_everything()
            raise RuntimeError(f"uvicorn did not stop within {self._stop_within:g} s")
        if self._failure is not None:
            raise RuntimeError(f"uvicorn failed: {self._failure!r}")

    def _cancel_everything(self) -> None:
        """Cancel every task of the server's loop, from any thread."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop ended meanwhile
                loop.call_soon_threadsafe(_cancel_tasks, loop)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _cancel_tasks(loop: asyncio.AbstractEventLoop) -> None:
    for task in asyncio.all_tasks(loop):
        task.cancel()


def _close_connections(server: uvicorn.Server) -> None:
    """Close every connection uvicorn holds: a hanging answer ends with its client gone."""
    for connection in list(server.server_state.connections):
        transport = getattr(connection, "transport", None)
        if transport is not None:
            transport.close()
