"""The options a client was made with, read back: one set of properties for both clients.

``AsyncInkit`` and ``BlockingInkit`` show the same options the same way; each sets
``_engine`` (the blocking client to the engine of the ``AsyncInkit`` it runs).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ._cache import BatchCache
    from ._engine import Engine
    from ._protocols import HTTPTimeout
    from ._retry import Backoff
    from ._throttle import Throttle

__all__ = ["ClientSettings"]


class ClientSettings:
    """The read-only options of a client, as given (``client.max_retries``)."""

    __slots__ = ()

    _engine: Engine

    @property
    def base_url(self) -> str:
        """The API root requests are sent to, without a trailing slash."""
        return self._engine.options.root

    @property
    def timeout(self) -> float | HTTPTimeout:
        """The ``timeout`` option as given: seconds per attempt, or an httpx(2) ``Timeout``."""
        return self._engine.options.timeout

    @property
    def deadline(self) -> float | None:
        """Seconds each call may take in all, or ``None`` (no bound)."""
        return self._engine.options.deadline

    @property
    def max_retries(self) -> int:
        """Retries after the first attempt of a retryable request."""
        return self._engine.options.max_retries

    @property
    def max_concurrency(self) -> int:
        """Requests this client (with its variants) keeps in flight at most."""
        return self._engine.options.max_concurrency

    @property
    def max_retry_after(self) -> float:
        """Longest ``Retry-After`` in seconds the client waits on."""
        return self._engine.options.max_retry_after

    @property
    def backoff(self) -> Backoff:
        """The backoff between retries without a ``Retry-After``."""
        return self._engine.options.backoff

    @property
    def default_headers(self) -> Mapping[str, str]:
        """The headers every request carries besides the SDK's own (its repr hides the values)."""
        return self._engine.options.default_headers

    @property
    def cache(self) -> BatchCache | None:
        """The cache of finished batches this client (and its variants) uses, if any."""
        scope = self._engine.cache
        return None if scope is None else scope.cache

    @property
    def keep_responses(self) -> bool:
        """Whether records remember the answer they were made from (``response_of``)."""
        return self._engine.options.keep_responses

    @property
    def throttle(self) -> Throttle | None:
        """The throttle this client (and its variants) sends through; ``None`` when off."""
        return self._engine.state.throttle
