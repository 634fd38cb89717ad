"""An opt-in cache of finished batches: a finished batch does not change, so why ask again.

Only batches whose ``is_finished`` is true are stored; a batch still in progress is
always fetched, so ``wait`` and ``watch`` never see a stale snapshot. Entries leave
after ``ttl`` seconds, or least-recently-used first once ``max_size`` is reached.

An entry belongs to whoever asked: the API root, the token, the caller's own HTTP
client or transport if any, and the path. What the API answers depends on each
(staging and production hold different batches under the same id; a token sees only
its own account's batches), so a cache shared by several
clients keeps each one's answers apart: each client reads and writes through its own
``CacheScope``, whose key names its root and token by a digest made once, when the
client is created. The digest is an HMAC-SHA-256 under a random key drawn when the
module is imported, which never leaves the process: the cache holds no token, and its
keys cannot be used to confirm a guessed one.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import secrets
import time
import weakref
from typing import TYPE_CHECKING, Final

import attrs

from ._validate import check_int, check_seconds

if TYPE_CHECKING:
    from collections.abc import Hashable

    from ._models import Batch

__all__ = ["BatchCache", "CacheScope", "CacheStats"]

#: The key of the owner digests: random, per process, never shown, logged or stored.
_OWNER_KEY: Final = secrets.token_bytes(32)
#: A random name for each HTTP client or transport a caller brought, for as long as it
#: lives: a caller's transport (a FakeInkit's, a mock's) decides the answers as much as
#: the root does, and a new object never inherits a dead one's name as it could its id().
_ROUTES: Final[weakref.WeakKeyDictionary[object, str]] = weakref.WeakKeyDictionary()


@attrs.frozen(kw_only=True)
class CacheStats:
    """What a ``BatchCache`` has done, for metrics (``cache.stats``)."""

    hits: int
    """Lookups answered from the cache."""
    misses: int
    """Lookups the cache could not answer (not cached, or expired); ``use_cache=False``
    lookups are not counted."""
    evictions: int
    """Entries dropped to stay within ``max_size``, least recently used first."""
    expirations: int
    """Entries dropped because they were older than ``ttl``."""
    size: int
    """Entries held now."""


class BatchCache:
    """Finished batches, kept for ``AsyncInkit(cache=BatchCache(...))``.

    ``client.batch.get(batch_id)`` answers from the cache when the batch was fetched
    finished within the last ``ttl`` seconds, without a request; ``get(...,
    use_cache=False)`` asks the API (or joins a lookup of it under way) and stores the
    answer if it is finished; an error leaves the entry as it was. ``wait`` and
    ``watch`` use it too: a finished batch is final.

    Sharing: a client and its ``with_options`` variants share the cache, and so do
    clients you pass the same instance to, within the limits of what they may see: an
    entry belongs to the API root, the token and the path it was fetched with (and to
    the ``http_client`` or ``transport`` you gave, if any), so a client is answered only
    with batches that a client of the same ``base_url`` and the same token fetched.
    Clients of another root (staging, production) or with another token (another
    account, a revoked or narrower one) send their own request
    and get their own answer (the batch, or a 401 or 404) from the API; ``ttl`` and
    ``max_size`` and the counters in ``stats`` are the whole cache's. No token is kept:
    each client's entries are keyed by a digest of its root and token under a random
    key of the process's own (HMAC-SHA-256), made once per client.

    Args:
        ttl: Seconds an entry is served (default 300). A finished batch does not
            change; the limit bounds how long a batch deleted at Inkit is still seen.
        max_size: Most entries kept (default 10,000); beyond it the least recently
            used one goes.

    Raises:
        TypeError: An option has the wrong type.
        ValueError: *ttl* is not a finite number > 0, or *max_size* is < 1.
    """

    __slots__ = (
        "_entries",
        "_evictions",
        "_expirations",
        "_hits",
        "_misses",
        "max_size",
        "ttl",
    )

    def __init__(self, *, ttl: float = 300.0, max_size: int = 10_000) -> None:
        self.ttl = float(check_seconds("ttl", ttl, above=True))
        """Seconds an entry is served."""
        self.max_size = check_int("max_size", max_size, minimum=1)
        """Most entries kept."""
        self._entries: collections.OrderedDict[Hashable, tuple[float, Batch]] = (
            collections.OrderedDict()
        )
        self._hits = self._misses = self._evictions = self._expirations = 0

    def __repr__(self) -> str:
        """Show the options and the size."""
        return f"<BatchCache size={len(self)} ttl={self.ttl:g} max_size={self.max_size}>"

    def __len__(self) -> int:
        """Entries held now (some may have expired and not yet been dropped)."""
        return len(self._entries)

    @property
    def stats(self) -> CacheStats:
        """Hits, misses, evictions and expirations so far, and the size now."""
        return CacheStats(
            hits=self._hits,
            misses=self._misses,
            evictions=self._evictions,
            expirations=self._expirations,
            size=len(self._entries),
        )

    def clear(self) -> None:
        """Drop every entry (the counters stay)."""
        self._entries.clear()

    def get(self, key: Hashable) -> Batch | None:
        """The finished batch stored under *key* if still fresh, else ``None``.

        The client's key names who asked (a digest of its root and token) and the path;
        see ``CacheScope``.
        """
        entry = self._entries.get(key)
        if entry is not None:
            stored_at, batch = entry
            if time.monotonic() - stored_at < self.ttl:
                self._entries.move_to_end(key)
                self._hits += 1
                return batch
            del self._entries[key]
            self._expirations += 1
        self._misses += 1
        return None

    def put(self, key: Hashable, batch: Batch) -> None:
        """Store *batch* under *key* if it is finished; drop the oldest beyond ``max_size``."""
        if not batch.is_finished:
            return
        self._entries[key] = (time.monotonic(), batch)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_size:
            self._entries.popitem(last=False)
            self._evictions += 1


class CacheScope:
    """One client's part of a shared ``BatchCache``: its entries, keyed by who asked.

    Made once per client (its ``with_options`` variants use the same), from its API root
    and token: the owner digest is computed here, not at each lookup, so a 10,000-id
    ``get_many`` pays one tuple per lookup for it. Every read and write of the cache by
    the client goes through it, so no lookup can reach another owner's entries.
    """

    __slots__ = ("_owner", "cache", "headers")

    def __init__(
        self,
        cache: BatchCache,
        root: str,
        token: str,
        route: object = None,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """Scope *cache* to the client of the API at *root* that sends *token*.

        *route* is the caller's own HTTP client or transport, if any: clients that send
        through different ones never share entries, whatever their root and token.
        *headers* are the ``default_headers`` the calls send (folded: names in lower
        case, sorted): a gateway may answer by them (a tenant, a key), so calls that send
        others never share entries either.
        """
        self.cache = cache
        """The shared cache."""
        self.headers = headers
        """The folded ``default_headers`` of the calls this scope serves."""
        via = "" if route is None else _route_name(route)
        # Names are tokens and values hold no CR or LF: one header per line says it all.
        sent = "\r\n".join(f"{name}:{value}" for name, value in headers)
        # Length-prefixed, so that no other (root, route, headers, token) gives the same.
        message = f"{len(root)}:{root}{len(via)}:{via}{len(sent)}:{sent}{token}".encode(
            "utf-8", "surrogatepass"
        )
        self._owner = hmac.new(_OWNER_KEY, message, hashlib.sha256).hexdigest()

    def get(self, path: str) -> Batch | None:
        """The fresh finished batch this owner fetched at *path*, else ``None``."""
        return self.cache.get((self._owner, path))

    def put(self, path: str, batch: Batch) -> None:
        """Keep *batch*, fetched at *path*, for this owner if it is finished."""
        self.cache.put((self._owner, path), batch)


def _route_name(route: object) -> str:
    """The random name of *route* while it lives (a fresh one if it cannot be weakly held)."""
    try:
        name = _ROUTES.get(route)
        if name is None:
            name = _ROUTES[route] = secrets.token_hex(8)
    except TypeError:  # not weakly referenceable: a name of its own, shared with nobody
        return secrets.token_hex(8)
    return name
