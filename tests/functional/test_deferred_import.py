"""The default sender's module, imported in a thread by a loop's first calls (``_deferred.py``).

In this process aiohttp is imported already, so clients get an ``AiohttpSender`` at
once; these tests drive a ``DeferredSender`` directly, as a client made before the import
gets one (a fresh interpreter does: tests/functional/test_imports.py).
"""

from __future__ import annotations

import asyncio
import importlib
import sys
import threading
import time
from typing import TYPE_CHECKING

import pytest

from inkit_async import AsyncInkit, Throttle
from inkit_async._exceptions import Secrets
from inkit_async._senders import _deferred
from inkit_async._senders._aiohttp import AiohttpSender
from inkit_async._senders._deferred import MODULE, DeferredSender, sender_maker
from inkit_async._throttle import regulator_of
from inkit_async._wire import Request, Timeouts
from tests.support.constants import TOKEN
from tests.support.loopback import Binary, binary_body

if TYPE_CHECKING:
    from tests.support.loopback import LoopbackServer

ARGUMENTS = {
    "max_connections": 10,
    "keepalive_expiry": 4.0,
    "verify": True,
    "proxy": None,
    "lane": None,
}


def _request(server: LoopbackServer, batch_id: str) -> Request:
    return Request(
        "GET",
        f"{server.url}/batch/{batch_id}",
        {"X-Inkit-API-Token": TOKEN},
        None,
        Timeouts(connect=5.0),
        Secrets(TOKEN),
    )


async def test_calls_wait_for_one_import_then_go_straight_to_aiohttp(server):
    """Three calls at once share the import; one cancelled meanwhile stops no other."""
    deferred = DeferredSender(dict(ARGUMENTS))
    assert repr(deferred) == "<DeferredSender>"
    sends = [asyncio.create_task(deferred.send(_request(server, f"rb_{n}"))) for n in range(3)]
    await asyncio.sleep(0)
    sends[0].cancel()
    replies = await asyncio.gather(*sends[1:])
    assert [reply.status for reply in replies] == [200, 200]
    assert sends[0].cancelled()
    made = deferred._sender  # noqa: SLF001
    assert isinstance(made, AiohttpSender)
    assert deferred.send == made.send  # later calls skip the stand-in
    assert repr(deferred) == f"<DeferredSender of {made!r}>"
    assert (await deferred.send(_request(server, "rb_9"))).status == 200
    deferred.forget()  # as in a forked child: the sessions are left alone, detached
    pooled = made._pooled  # noqa: SLF001
    assert pooled is not None
    assert pooled.closed
    await deferred.aclose()


async def test_closing_before_any_call_closes_nothing_and_forgetting_is_harmless():
    """No call, no sender: aclose() and forget() have nothing to do."""
    deferred = DeferredSender(dict(ARGUMENTS))
    deferred.forget()
    await deferred.aclose()
    assert deferred._sender is None  # noqa: SLF001


async def test_a_failed_import_fails_the_waiting_calls(monkeypatch):
    """A broken install: each waiting call raises the import's own error."""
    monkeypatch.setattr(_deferred, "MODULE", "inkit_async._no_such_sender")
    deferred = DeferredSender(dict(ARGUMENTS))
    request = Request("GET", "http://127.0.0.1:9/v1/batch/x", {}, None, Timeouts(), Secrets())
    with pytest.raises(ModuleNotFoundError, match="_no_such_sender"):
        await deferred.send(request)


def test_a_loop_closed_during_the_import_is_left_alone(monkeypatch):
    """The thread finishes without a word: nobody waits any more."""
    loop = asyncio.new_event_loop()
    release = threading.Event()
    real = _deferred.importlib.import_module

    def slow(name: str) -> object:
        release.wait(10)
        return real(name)

    monkeypatch.setattr(_deferred.importlib, "import_module", slow)
    future = _deferred._import_in_a_thread(loop)  # noqa: SLF001
    [thread] = [t for t in threading.enumerate() if t.name == "inkit-async import"]
    loop.close()
    release.set()
    thread.join(10)
    assert not thread.is_alive()
    assert not future.done()


async def test_a_settled_import_is_not_settled_twice():
    """The future a caller may have given up on keeps its first outcome."""
    loop = asyncio.get_running_loop()
    future = _deferred._import_in_a_thread(loop)  # noqa: SLF001
    future.cancel()
    for _ in range(500):
        await asyncio.sleep(0.01)
        if not any(t.name == "inkit-async import" for t in threading.enumerate()):
            break
    assert future.cancelled()


def test_the_stand_in_is_made_only_while_the_module_is_not_imported(monkeypatch):
    """sender_maker makes aiohttp's sender itself once its module is imported."""
    make = sender_maker(**ARGUMENTS)
    assert isinstance(make(), AiohttpSender)
    monkeypatch.delitem(sys.modules, MODULE)
    assert isinstance(make(), DeferredSender)


async def test_a_download_first_waits_for_the_import_then_opens_through_aiohttp(server):
    """A loop's first call may be a download (``open``): it too waits on the one import."""
    server.handler = lambda request: Binary(size=100_000)
    deferred = DeferredSender(dict(ARGUMENTS))
    opened = await deferred.open(_request(server, "rb_1"))
    try:
        body = b"".join([piece async for piece in opened.body.pieces()])
    finally:
        await opened.body.aclose()
    assert opened.status == 200
    assert body == binary_body(100_000)
    made = deferred._sender  # noqa: SLF001
    assert isinstance(made, AiohttpSender)
    assert deferred.open == made.open  # later downloads skip the stand-in
    assert (await deferred.send(_request(server, "rb_2"))).status == 200
    await deferred.aclose()


async def test_a_loops_first_calls_take_no_permit_before_the_sender_is_ready(server, monkeypatch):
    """A permit is leave to send at once: none is taken while the import runs.

    Permits taken during the import would all go out when it ends, bunched, whatever
    the throttle's (or a fleet's) pacing said.
    """
    throttle = Throttle()
    sent_when_imported: list[int] = []

    real_import = importlib.import_module

    def slow_import(name: str) -> object:
        time.sleep(0.3)  # in the import thread: the loop runs on, calls arrive
        sent_when_imported.append(regulator_of(throttle).sent)
        return real_import(name)

    monkeypatch.delitem(sys.modules, MODULE)  # as in a fresh interpreter
    monkeypatch.setattr(_deferred.importlib, "import_module", slow_import)
    async with AsyncInkit(TOKEN, base_url=server.url, throttle=throttle) as client:
        assert isinstance(client._engine.state.local().sender, DeferredSender)  # noqa: SLF001
        batches = await asyncio.gather(*(client.batch.get(f"rb_{n}") for n in range(20)))
    assert [batch.id for batch in batches] == [f"rb_{n}" for n in range(20)]
    assert sent_when_imported == [0]  # no permit was taken while the module loaded
    assert regulator_of(throttle).sent == 20
