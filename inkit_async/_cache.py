"""An opt-in cache of finished batches: a finished batch does not change, so why ask again.

Only batches whose ``is_finished`` is true are stored; a batch still in progress is
always fetched, so ``wait`` and ``watch`` never see a stale snapshot. Entries leave
after ``ttl`` seconds, or least-recently-used first once ``max_size`` is reached.
"""

from __future__ import annotations

import collections
import math
import time
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from ._models import Batch

__all__ = ["BatchCache", "CacheStats"]


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
    ``watch`` use it too: a finished batch is final. A client and its ``with_options``
    variants share the cache; clients you pass the same instance to share it as well.

    Args:
        ttl: Seconds an entry is served (default 300). A finished batch does not
            change; the limit bounds how long a batch deleted at Inkit is still seen.
        max_size: Most entries kept (default 10,000); beyond it the least recently
            used one goes.

    Raises:
        TypeError: An option has the wrong type.
        ValueError: *ttl* is not a finite number > 0, or *max_size* is < 1.
    """

    __slots__ = ("_entries", "_evictions", "_expirations", "_hits", "_misses", "max_size", "ttl")

    def __init__(self, *, ttl: float = 300.0, max_size: int = 10_000) -> None:
        if isinstance(ttl, bool) or not isinstance(ttl, int | float):
            raise TypeError(f"ttl must be a number of seconds, got {type(ttl).__name__}")
        if not (math.isfinite(ttl) and ttl > 0):
            raise ValueError(f"ttl must be a finite number > 0, got {ttl!r}")
        if isinstance(max_size, bool) or not isinstance(max_size, int):
            raise TypeError(f"max_size must be an int, got {type(max_size).__name__}")
        if max_size < 1:
            raise ValueError(f"max_size must be >= 1, got {max_size}")
        self.ttl = float(ttl)
        """Seconds an entry is served."""
        self.max_size = max_size
        """Most entries kept."""
        self._entries: collections.OrderedDict[str, tuple[float, Batch]] = collections.OrderedDict()
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

    def get(self, key: str) -> Batch | None:
        """The finished batch stored under *key* (a path) if still fresh, else ``None``."""
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

    def put(self, key: str, batch: Batch) -> None:
        """Store *batch* under *key* if it is finished; drop the oldest beyond ``max_size``."""
        if not batch.is_finished:
            return
        self._entries[key] = (time.monotonic(), batch)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_size:
            self._entries.popitem(last=False)
            self._evictions += 1
