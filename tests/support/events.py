"""What a client reported, kept for tests to read: its events and its per-attempt log records."""

from __future__ import annotations

from typing import TYPE_CHECKING

from inkit_async import ClientEvent, PauseEvent, RetryEvent

from .loopback import wait_until

if TYPE_CHECKING:
    import pytest


class Events(list[ClientEvent]):
    """An ``on_event`` callback that keeps every event, in order."""

    def __call__(self, event: ClientEvent) -> None:
        """Keep *event*."""
        self.append(event)

    @property
    def retries(self) -> list[RetryEvent]:
        """The retry events, in order."""
        return [event for event in self if isinstance(event, RetryEvent)]

    @property
    def pauses(self) -> list[PauseEvent]:
        """The pause events, in order."""
        return [event for event in self if isinstance(event, PauseEvent)]

    @property
    def delays(self) -> list[float]:
        """The wait before each retry, in order."""
        return [event.delay for event in self.retries]

    async def wait_for_retries(self, count: int = 1, within: float = 5.0) -> None:
        """Return once *count* retries were reported (the wait before them has begun)."""
        await wait_until(lambda: len(self.retries) >= count, within, f"{count} retries")


def attempts(caplog: pytest.LogCaptureFixture) -> list[tuple[int, int | str]]:
    """``(attempt number, status or exception name)`` of each per-attempt DEBUG record."""
    return [
        (record.inkit_attempt, record.inkit_outcome)
        for record in caplog.records
        if record.name == "inkit_async" and hasattr(record, "inkit_attempt")
    ]
