"""Searching what an error holds for a secret: every object reachable from it, and its chain."""

from __future__ import annotations

import gc
import pickle
import traceback
import types
import weakref

from .constants import TOKEN

_OPAQUE = (
    type,
    types.ModuleType,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.FrameType,
    types.TracebackType,
    types.CodeType,
    weakref.ReferenceType,
)


def reachable(root: object) -> list[object]:
    """Every object reachable from *root* by reference, skipping code, frames and classes."""
    seen: set[int] = set()
    found: list[object] = []
    pending = [root]
    while pending:
        item = pending.pop()
        if id(item) in seen or isinstance(item, _OPAQUE):
            continue
        seen.add(id(item))
        found.append(item)
        pending.extend(gc.get_referents(item))
        assert len(found) < 50_000, "the walk left the error's own objects"
    return found


def chain(error: BaseException) -> list[BaseException]:
    """*error* and every exception it was raised from or during, suppressed contexts too."""
    seen: list[BaseException] = []
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or any(current is known for known in seen):
            continue
        seen.append(current)
        pending += [current.__cause__, current.__context__]
    return seen


def assert_hidden(error: BaseException, *secrets: str) -> None:
    """Assert that none of *secrets* is reachable from *error*, shown by it or pickled.

    Shown: ``str``, ``repr`` and the formatted traceback of every exception in its
    chain, each on its own (so that a context the traceback leaves out counts too).
    """
    for secret in secrets:
        forms = (secret.encode(), secret.encode("utf-16-le"), secret.encode("utf-16-be"))
        for item in reachable(error):
            if isinstance(item, str):
                assert secret not in item
            elif isinstance(item, bytes | bytearray):
                assert not any(form in item for form in forms)
        for link in chain(error):
            shown = [str(link), repr(link), *traceback.format_exception(link, chain=False)]
            assert not any(secret in text for text in shown)
        assert "".join(traceback.format_exception(error)).find(secret) == -1
        assert secret.encode() not in pickle.dumps(error)


def assert_secret(error: BaseException) -> None:
    """Assert that nothing reachable from *error*, nor its pickle, holds the token."""
    assert_hidden(error, TOKEN)
