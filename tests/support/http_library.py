"""The httpx-API library a test hands to AsyncInkit: httpx, or httpx2 with INKIT_TEST_HTTPX.

The SDK sends through a caller's ``httpx.AsyncClient`` or ``httpx2.AsyncClient`` (and a
transport or ``Timeout`` of either). Tests that build such an object take the
``http_library`` fixture (tests/conftest.py) and build it from that module, so the same
test runs with httpx by default and with httpx2 when ``INKIT_TEST_HTTPX=httpx2``
(``nox -s tests_httpx2`` runs exactly those tests so). The tests in test_httpx2.py use
httpx2 whatever the variable says.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Final

import httpx

from inkit_async._wire import TRANSPORT_KINDS

#: The environment variable that picks the library, and what it may say.
ENV: Final = "INKIT_TEST_HTTPX"
NAMES: Final = ("httpx", "httpx2")


def selected() -> ModuleType:
    """The library ``INKIT_TEST_HTTPX`` names (httpx when unset or empty).

    Raises:
        ValueError: It names anything else (a typo must not quietly test httpx).
    """
    name = os.environ.get(ENV) or "httpx"
    if name not in NAMES:
        raise ValueError(f"{ENV} must be one of {', '.join(NAMES)}, got {name!r}")
    return importlib.import_module(name)


def library_error(error: BaseException, library: ModuleType) -> BaseException:
    """The exception *library* raised under the SDK's *error*, after checking the chain.

    The SDK's error's ``__cause__`` is always an httpx exception. With httpx that is the
    caller's library's own exception; with httpx2 it is a new httpx exception of the
    same kind (the nearest of httpx's names) whose ``__cause__`` is httpx2's.
    """
    cause = error.__cause__
    assert isinstance(cause, httpx.HTTPError), repr(cause)
    if library is httpx:
        return cause
    raised = cause.__cause__
    assert isinstance(raised, library.HTTPError), repr(raised)
    kind = next(
        (cls.__name__ for cls in type(raised).__mro__ if cls.__name__ in TRANSPORT_KINDS),
        "TransportError",
    )
    assert type(cause) is getattr(httpx, kind), (type(cause), kind)
    return raised
