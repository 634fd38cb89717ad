"""Whether respx is mocking httpx right now: the one place the SDK reads respx's state.

respx intercepts requests inside httpx (at ``AsyncClient._transport_for_url`` or at
httpcore's pool), which the default sender, on aiohttp, never passes through. So that
a test written the usual way (``with respx.mock: ...``) never reaches the network by
accident, the default sender hands every request to an httpx client while a respx
router is started. respx has no public "is mocking" switch; its mockers keep the
routers started on them in ``Mocker.registry[name].routers``, which this reads.
Should respx rename those, ``tests/test_respx.py::test_the_respx_guard_sees_a_started_router``
fails. The public alternative needs no guard: ``AsyncInkit(transport=httpx.MockTransport(...))``.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["respx_is_mocking"]


def respx_is_mocking() -> bool:
    """Whether a respx router is started (``respx.mock`` entered), in any of its mockers."""
    mocks = sys.modules.get("respx.mocks")
    if mocks is None:  # respx was never imported: the common case, one dict lookup
        return False
    registry: Mapping[str, object] = getattr(getattr(mocks, "Mocker", None), "registry", None) or {}
    return any(getattr(mocker, "routers", None) for mocker in registry.values())
