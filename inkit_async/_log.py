"""Logging, an observer: each attempt at ``DEBUG``, each event at ``INFO``.

Every record goes to the ``inkit_async`` logger, below ``WARNING``: silent unless the app
opts in. An event's record carries the event under ``extra={"inkit_event": event}``; an
attempt's carries ``inkit_attempt``, ``inkit_outcome`` (the status, or the failure's
name) and ``inkit_elapsed_ms``, so a test or a structlog processor reads fields instead
of parsing message text. No record holds a credential: methods, paths, statuses and
the reasons ``decide`` wrote, which are masked where they are built.

``INKIT_LOG`` switches the logger on without code: ``INKIT_LOG=debug`` (or ``info``,
``warning``) sets the ``inkit_async`` logger's level and, when no handler would show its
records (none on it or its ancestors: the app configured no logging), adds one that
writes to stderr. Read once per process, by the first client made (``log_from_env``),
where the token and the API root are read. An unknown value is ignored with a
``RuntimeWarning``, not refused: a typo in a debugging switch must not stop an app.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import warnings
from typing import TYPE_CHECKING, Final

from ._constants import ENV_LOG
from ._events import PauseEvent, RateEvent, RetryEvent
from ._observe import NO_HEADERS, Observer

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ._events import ClientEvent

__all__ = ["LOG_LEVELS", "LogObserver", "level_of", "log_from_env"]

logger: Final = logging.getLogger("inkit_async")

#: What ``INKIT_LOG`` may say (in any case), and the level each sets.
LOG_LEVELS: Final[Mapping[str, int]] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
}
#: The format of the stderr handler ``INKIT_LOG`` adds.
LOG_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_SHOWN: Final = re.compile(r"[A-Za-z]{1,16}")
_once: Final = threading.Lock()
_read = threading.Event()  # set once INKIT_LOG was read, by the first client


def level_of(value: str | None) -> int | None:
    """The level ``INKIT_LOG=value`` asks for; ``None`` when unset or empty.

    Warns (``RuntimeWarning``) and returns ``None`` for anything else than
    ``LOG_LEVELS``'s names, in any case, with spaces around; the value is shown only
    when it is a short word (an environment variable may hold anything).
    """
    if value is None or not value.strip():
        return None
    level = LOG_LEVELS.get(value.strip().lower())
    if level is None:
        shown = repr(value) if _SHOWN.fullmatch(value) else "a value (not shown)"
        warnings.warn(
            f"{ENV_LOG} is set to {shown}, which is not one of {', '.join(LOG_LEVELS)}; "
            "it is ignored",
            RuntimeWarning,
            stacklevel=4,
        )
    return level


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler ``INKIT_LOG`` adds: to stderr, marked so that it is never added twice."""


def log_from_env(target: logging.Logger = logger) -> None:
    """Apply ``INKIT_LOG`` to *target* (the ``inkit_async`` logger), once per process.

    Sets its level; adds a ``_StderrHandler`` when no handler would show its records
    (``hasHandlers`` is false: none on it or its ancestors), so never a second one.
    """
    if _read.is_set():
        return
    with _once:
        if _read.is_set():
            return
        _read.set()
        level = level_of(os.environ.get(ENV_LOG))
        if level is None:
            return
        target.setLevel(level)
        if not target.hasHandlers():  # the app's own logging shows them otherwise
            handler = _StderrHandler(sys.stderr)
            handler.setFormatter(logging.Formatter(LOG_FORMAT))
            target.addHandler(handler)


class LogObserver(Observer):
    """Logs the attempts and events of one engine (its ``max_retries`` is in the lines)."""

    __slots__ = ("_max_retries",)

    def __init__(self, max_retries: int) -> None:
        """Log for an engine that retries a call at most *max_retries* times."""
        self._max_retries = max_retries

    def attempt_started(self, method: str, url: str, path: str, number: int) -> _AttemptLine | None:
        """Watch the attempt only while ``DEBUG`` is on: otherwise nothing is made."""
        del url  # the line names the path: the root is the same for every line
        if logger.isEnabledFor(logging.DEBUG):
            return _AttemptLine(method, path, number)
        return None

    def event(self, event: ClientEvent) -> None:
        """Log an event at ``INFO`` with the record attached."""
        extra = {"inkit_event": event}
        match event:
            case RetryEvent():
                logger.info(
                    "Retrying %s %s in %.2f s (retry %d of %d): %s",
                    event.method,
                    event.path,
                    event.delay,
                    event.attempt,
                    self._max_retries,
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


class _AttemptLine:
    """One attempt's ``DEBUG`` line, written when it ends."""

    __slots__ = ("method", "number", "path")

    def __init__(self, method: str, path: str, number: int) -> None:
        self.method = method
        self.path = path
        self.number = number

    def headers(self) -> Mapping[str, str]:
        """None: a log line adds nothing to the request."""
        return NO_HEADERS

    def ended(self, status: int | None, failure: str | None, elapsed: float) -> None:
        """Log ``GET /batch/x -> 200 (attempt 1, 3.2 ms)``."""
        result = status if status is not None else failure
        elapsed_ms = elapsed * 1000
        logger.debug(
            "%s %s -> %s (attempt %d, %.1f ms)",
            self.method,
            self.path,
            result,
            self.number,
            elapsed_ms,
            extra={
                "inkit_attempt": self.number,
                "inkit_outcome": result,
                "inkit_elapsed_ms": elapsed_ms,
            },
        )

    def interrupted(self, failure: str, elapsed: float) -> None:
        """Nothing: an attempt cut short by a cancellation has no line."""
