"""The answer behind a record: ``response_of(record)``, for clients that keep responses.

Errors carry their response (``APIStatusError.response``, ``.request_id``); a success
returns only the record. A client made with ``keep_responses=True`` also remembers, for
each record it returns, the 2xx it was made from: its status, its headers, the attempt
that got it and how long that took. ``response_of(record)`` reads them back as a
``ResponseInfo``.

Why a lookup beside the record, not a field of it or a ``with_raw_response`` view:

- Records are frozen, slotted, compared by value and serialised (``to_dict``, pickle,
  FastAPI): a field would show in all of those, and two batches with the same JSON
  would no longer be equal. The answer is about one fetch, not about the batch.
- Every call (``get``, ``get_many``, ``iter_many``, ``list``, ``create``, ``wait``)
  returns records; one lookup serves them all, where a raw view would need a second
  spelling of each method.

How it is kept (``_KEPT``): by the record's identity (``id``), through a weak reference
that forgets the entry when the record is collected, so memory follows the records the
application holds and nothing more. Not a ``WeakKeyDictionary``: that one compares keys
with ``==``, and records compare by value, so two equal batches fetched by two requests
would share one entry (the second fetch's). ``response_of`` checks that the entry's
referent is the record itself, so a reused ``id`` can never answer for another object.

What is kept is the raw answer (status, headers as received, the client's ``Secrets``);
the ``ResponseInfo`` is built when asked for, so a client that never asks pays for no
masking and no decoding. Where it is filled: ``Engine._attempt`` times a usable 2xx
and stamps the ``Reply`` with that time and the attempt's number (the engine, never a
sender: only it knows which attempt this is), and ``cast_reply`` keeps the record it
casts from that reply. Every call that returns a record goes through those two, the
lookups of ``get_many`` and ``iter_many`` too (their queue sends through
``Engine._send``), so none has a path of its own to forget. A client that does not
keep responses pays one attribute check per usable answer (``Engine._attempt``) and
one per cast (``cast_reply``).

One switch per client (``ClientOptions.keep_responses``, shared with its variants):
coalesced lookups and the cache hand one record to the callers of every variant, so
whether a record has an answer cannot depend on the variant that asks.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Final, Self

import attrs

from ._exceptions import request_id_of

if TYPE_CHECKING:
    from ._exceptions import Secrets
    from ._wire import Reply

__all__ = ["ResponseInfo", "keep", "response_of"]

#: Headers a ``ResponseInfo`` never shows: a cookie the server (or a gateway in front of
#: it) sets is a credential of its own, which ``Secrets`` does not know to mask.
DROPPED_HEADERS: Final = frozenset({b"set-cookie", b"set-cookie2"})


class _Headers(Mapping[str, str]):
    """Read-only headers, looked up by name in any case; a repeated name's values joined.

    Names are kept lower-case; the values of a name sent more than once are joined with
    ``", "``, as ``httpx.Headers`` reads them.
    """

    __slots__ = ("_items",)

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        items: dict[str, str] = {}
        for name, value in pairs:
            key = name.lower()
            items[key] = f"{items[key]}, {value}" if key in items else value
        self._items = items

    def __getitem__(self, name: str) -> str:
        """The value of *name*, in any case."""
        if not isinstance(name, str):
            raise KeyError(name)
        return self._items[name.lower()]

    def __iter__(self) -> Iterator[str]:
        """The names, lower-case."""
        return iter(self._items)

    def __len__(self) -> int:
        """How many names."""
        return len(self._items)

    def __hash__(self) -> int:
        """Hashable, as the frozen record that holds it."""
        return hash(frozenset(self._items.items()))

    def __repr__(self) -> str:
        """The headers as a dict (credentials masked already)."""
        return f"Headers({self._items!r})"


@attrs.frozen(kw_only=True)
class ResponseInfo:
    """The 2xx a record was made from: ``inkit_async.response_of(record)``.

    Only for a client made with ``keep_responses=True``. Callers that share a request
    (coalesced lookups, ``get_many`` and ``iter_many`` over overlapping ids) share its
    record, and so see the same answer; a record from a ``BatchCache`` shows the answer
    that filled the cache, however long ago.
    """

    status: int
    """The HTTP status (200, 201, ...)."""
    headers: Mapping[str, str]
    """The answer's headers, read-only, looked up by name in any case
    (``info.headers["X-Request-Id"]``); a name sent twice reads as its values joined
    with ``", "``. The client's credentials (its token, proxy passwords and
    ``default_headers`` values) are masked as ``[redacted]`` in names and values, as in
    errors; ``Set-Cookie`` is left out. The SDK decodes compressed bodies itself, so
    ``Content-Encoding`` and ``Content-Length`` may be missing."""
    request_id: str | None
    """The ``x-request-id`` (or ``request-id``) header, as ``APIStatusError.request_id``
    reads it; ``None`` without one."""
    elapsed: float
    """Seconds the attempt that got this answer took, from sending to the body read
    whole (not the waits for a slot or the throttle, nor earlier attempts)."""
    attempts: int
    """How many attempts the call made, this one included (1: answered at once)."""


class _Entry(weakref.ref[object]):
    """The raw answer behind one record, held by a weak reference to the record.

    The reference is the entry: one object per kept record, forgotten with it (as the
    ``KeyedRef`` of ``WeakValueDictionary``).
    """

    __slots__ = ("attempt", "elapsed", "headers", "key", "secrets", "sent_token", "status")

    def __new__(cls, record: object, reply: Reply, secrets: Secrets) -> Self:  # noqa: ARG004 - __init__'s
        """A weak reference to *record* whose callback forgets the entry."""
        return super().__new__(cls, record, _forget)

    def __init__(self, record: object, reply: Reply, secrets: Secrets) -> None:
        """The answer *reply*, to a client with *secrets*, behind *record*.

        ``weakref.ref.__init__`` is not called: it only checks its arguments, which are
        ``__new__``'s, and would refuse these.
        """
        self.key = id(record)
        self.status = reply.status
        self.headers = reply.headers
        self.sent_token = reply.sent_token
        self.secrets = secrets
        self.elapsed = reply.elapsed or 0.0
        self.attempt = reply.attempt


#: Every kept answer, by the ``id`` of its record (see the module's docstring). Each
#: operation on it is one dict operation, atomic: no lock, which a weak reference's
#: callback (run by the garbage collector, inside any code) could deadlock on.
_KEPT: Final[dict[int, _Entry]] = {}


def _forget(entry: _Entry) -> None:
    """Drop a collected record's entry, never another one registered under a reused id."""
    key = entry.key
    if _KEPT.get(key) is entry:
        _KEPT.pop(key, None)


def keep(record: object, reply: Reply, secrets: Secrets) -> None:
    """Remember that *record* was made from *reply*, a 2xx of a client with *secrets*.

    A result that cannot be weakly referenced (``None``, a plain list) is not kept:
    every record the SDK returns can be.
    """
    try:
        entry = _Entry(record, reply, secrets)
    except TypeError:
        return
    _KEPT[entry.key] = entry


def response_of(record: object) -> ResponseInfo | None:
    """The 2xx *record* was made from, if its client kept it; else ``None``.

    Works for any record a client made with ``keep_responses=True`` returned (a
    ``Batch``, a ``Page``, a ``CreatedBatch``, a ``Render``, ...), for as long as the
    record lives. ``None`` for a record of a client that does not keep responses, one
    answered by a ``BatchCache`` another client filled without keeping it, and one you
    built or copied yourself (``attrs.evolve``, ``copy.copy``, a pickle's copy): the
    answer belongs to the object the client returned, not to equal ones. The records of
    a listing's items come from their page's answer: ask ``response_of(page)`` of a
    page from ``.pages()``. A download returns no record and keeps no answer.

    The credentials of the client are masked in the headers, as in an error's
    ``.response``, and ``Set-Cookie`` is left out (see ``ResponseInfo.headers``).
    """
    entry = _KEPT.get(id(record))
    if entry is None or entry() is not record:
        return None
    secrets = entry.secrets.sent_with(entry.sent_token)
    headers = _Headers(
        (_text(secrets.mask_bytes(name)), _text(secrets.mask_bytes(value)))
        for name, value in entry.headers
        if name.lower() not in DROPPED_HEADERS
    )
    return ResponseInfo(
        status=entry.status,
        headers=headers,
        request_id=request_id_of(headers),
        elapsed=entry.elapsed,
        attempts=entry.attempt,
    )


def _text(raw: bytes) -> str:
    """A header as text: UTF-8 (ASCII above all) when it decodes so, else Latin-1 (any bytes)."""
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return raw.decode("latin-1")
