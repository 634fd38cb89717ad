"""Run a function in a forked child and read its verdict from the exit code, bounded."""

from __future__ import annotations

import os
import signal
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

#: Seconds a child gets before it is killed (and the test fails).
CHILD_WITHIN = 30.0


def in_child(work: Callable[[], bool], within: float = CHILD_WITHIN) -> int:
    """Fork; run *work* in the child; return its exit code: 0 if it returned true, else 1.

    The child ends with ``os._exit`` (no interpreter clean-up, no pytest). The parent
    waits at most *within* seconds, then kills the child and returns -9.
    """
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's coverage is not collected
        code = 1
        try:
            code = 0 if work() else 1
        finally:
            os._exit(code)
    end = time.monotonic() + within
    while time.monotonic() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return -signal.SIGKILL
