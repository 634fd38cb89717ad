"""``BlockingInkit``: the client for synchronous code (Celery, RQ, cron, Django views).

A ``BlockingInkit`` holds one ``AsyncInkit`` and one event loop, which runs in a daemon
thread of its own (``_LoopThread``), started by the first call (or ``with``). Every
blocking method hands the ``AsyncInkit`` method of the same name to that loop and waits
for its outcome, so every thread that calls the client shares one connection pool, one
set of concurrency slots and one throttle, and nothing of what a call does is written
twice: the adapters here (``_blocking``, ``_blocking_iterator``, ``_blocking_listing``)
take the async method itself and pass every argument on as given, so a keyword the async
method gains works here unchanged.

What crosses the thread boundary, and how it ends:

- A call is a task on the loop, made there (its coroutine too, so a call the loop never
  started cannot leave a coroutine un-awaited). The caller waits for the task's end; an
  exception in the caller while it waits (``KeyboardInterrupt``, a signal handler's)
  cancels the task and waits up to ``_GRACE`` seconds for it to wind down, so nothing of
  the call keeps running. The caller's ``contextvars`` go with the call (a trace's
  parent span, a request id).
- An iterator is pulled one item per round trip; leaving it early (``break``, ``close()``,
  dropping it) closes the async generator on the loop before the caller goes on.
- ``close()`` (the owner's) stops the loop: it cancels the calls under way (they raise
  ``InkitError``), closes the ``AsyncInkit`` and ends the thread, each step bounded.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import contextvars
import copy
import inspect
import itertools
import logging
import os
import threading
import warnings
import weakref
from typing import (
    TYPE_CHECKING,
    Any,
    Concatenate,
    Final,
    Generic,
    Literal,
    ParamSpec,
    Self,
    TypeVar,
    cast,
    overload,
)

from ._client import AsyncInkit
from ._exceptions import InkitError
from ._records import Document, FlowInvocation, Folder, Render, Template
from ._settings import ClientSettings
from .resources import (
    BatchResource,
    DocumentBatchResource,
    DocumentResource,
    FlowResource,
    FolderResource,
    RenderResource,
    TemplateResource,
)

if TYPE_CHECKING:
    from collections.abc import (
        AsyncIterator,
        Awaitable,
        Callable,
        Generator,
        Iterable,
        Iterator,
    )
    from pathlib import Path
    from types import TracebackType

    from ._download import DownloadStream
    from ._models import Batch, Page
    from ._pagination import Listing
    from .resources._base import APIResource
    from .resources._downloading import DownloadingResource

__all__ = ["BlockingInkit"]

P = ParamSpec("P")
Q = ParamSpec("Q")
T = TypeVar("T")
S = TypeVar("S")
R = TypeVar("R")
L = TypeVar("L")

_log = logging.getLogger("inkit_async")

#: Seconds a cancelled call, a closing client or the loop's own clean-up each get to end.
_GRACE: Final = 5.0
#: How often a waiting caller looks for a signal: a SIGINT the kernel hands to another
#: thread still reaches the main thread's wait within this.
_WAKE: Final = 0.2

_CLOSED: Final = "This BlockingInkit is closed; create a new one."
_IN_LOOP: Final = (
    "BlockingInkit was called from async code (an event loop runs in this thread): a "
    "blocking call would stop that loop until it returns. Use AsyncInkit there, with "
    "`await client.batch.get(...)`."
)
_CLOSED_UNDER_WAY: Final = "The BlockingInkit was closed while this call was under way."
_UNCLOSED: Final = (
    "A BlockingInkit was garbage-collected without being closed: call client.close(), or "
    "use `with BlockingInkit(...) as client:`. Its loop thread closes it in the background."
)

_names = itertools.count(1)
#: The loop threads started and not closed, closed at interpreter exit.
_OPEN: Final[weakref.WeakSet[_LoopThread]] = weakref.WeakSet()
#: Every loop thread of this process, so a forked child can give each a new lock.
_ALL: Final[weakref.WeakSet[_LoopThread]] = weakref.WeakSet()
#: A forked child's copies of its parent's loops: never closed here (closing one would
#: unregister the parent's descriptors from the epoll instance they share), never dropped
#: (an unclosed loop warns when collected).
_LEFT_BY_FORK: Final[list[asyncio.AbstractEventLoop]] = []


class _End:
    """What ``anext`` gives at the end of an iterator, instead of raising across threads."""


_END: Final = _End()


def _refuse_running_loop() -> None:
    """Raise ``InkitError`` when an event loop runs in this thread (async code, or ours)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise InkitError(_IN_LOOP)


class _Shared:
    """What the loop thread and its ``_LoopThread`` share: the calls under way, close's errors.

    The thread holds this, never the ``_LoopThread``: a ``BlockingInkit`` dropped without
    ``close()`` can still be collected (and then closes itself).
    """

    __slots__ = ("calls", "failures", "iterators")

    def __init__(self) -> None:
        # Touched on the loop thread only.
        self.calls: set[asyncio.Task[Any]] = set()
        self.iterators: weakref.WeakSet[AsyncIterator[Any]] = weakref.WeakSet()
        self.failures: list[Exception] = []


class _Call(Generic[T]):
    """One call's task on the loop, and an event the calling thread waits on."""

    __slots__ = ("ended", "task")

    def __init__(self) -> None:
        self.ended = threading.Event()
        self.task: asyncio.Task[T] | None = None

    def start(
        self, work: Callable[[], Awaitable[T]], context: contextvars.Context, shared: _Shared
    ) -> None:
        """Make the task (on the loop thread), in the caller's context."""
        task = asyncio.get_running_loop().create_task(_awaited(work), context=context)
        self.task = task
        shared.calls.add(task)
        task.add_done_callback(shared.calls.discard)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[T]) -> None:
        if not task.cancelled():
            task.exception()  # retrieved here: a caller that left never reads it
        self.ended.set()

    def cancel(self) -> None:
        """Cancel the task (on the loop thread), which ``start`` made: it ran first."""
        cast("asyncio.Task[T]", self.task).cancel()


async def _awaited(work: Callable[[], Awaitable[T]]) -> T:
    return await work()


async def _next(items: AsyncIterator[T], shared: _Shared) -> T | _End:
    """The next item of *items*, or ``_END`` (``StopAsyncIteration`` stays on the loop)."""
    shared.iterators.add(items)  # closed first if the client closes while it is open
    return await anext(items, _END)


async def _made(make: Callable[[], T]) -> T:
    """Call *make* on the loop thread: what an async method returns at once (an iterator)."""
    return make()


def _serve(loop: asyncio.AbstractEventLoop, client: AsyncInkit, shared: _Shared) -> None:
    """The loop thread: run until stopped, then wind down and close the loop."""
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
        loop.run_until_complete(_wind_down(client, shared))
    finally:
        asyncio.set_event_loop(None)
        loop.close()


async def _cancel_and_wait(tasks: set[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=_GRACE)


async def _wind_down(client: AsyncInkit, shared: _Shared) -> None:
    """Cancel the calls under way, close the client, then what the loop itself holds."""
    loop = asyncio.get_running_loop()
    await _cancel_and_wait(set(shared.calls))
    # The iterators still open, each closed by itself: shutdown_asyncgens would close an
    # iterator and the generators it iterates all at once, and one then finds the other
    # already running (iter_many's stream).
    for items in list(shared.iterators):
        aclose = getattr(items, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception, TimeoutError):
                await asyncio.wait_for(aclose(), _GRACE)
    try:
        async with asyncio.timeout(_GRACE):
            await client.aclose()
    except Exception as exc:  # noqa: BLE001 - handed to close()
        shared.failures.append(exc)
    # What the client left running (as asyncio.run cancels what its main left).
    await _cancel_and_wait(asyncio.all_tasks() - {asyncio.current_task()})
    # Async generators a dropped iterator left open, then the resolver's threads. A thread
    # cannot be started at interpreter exit (3.12+): the executor is then left to exit.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(loop.shutdown_asyncgens(), _GRACE)
    with contextlib.suppress(TimeoutError, RuntimeError):
        await asyncio.wait_for(loop.shutdown_default_executor(), _GRACE)


class _LoopThread:
    """One event loop in one daemon thread, running one ``AsyncInkit``'s calls for any thread.

    The owner ``BlockingInkit`` and its ``with_options`` variants share it. Every
    submission happens under the lock, and ``close`` stops the loop under it too, so a
    call is either refused or certainly started before the loop stops.
    """

    __slots__ = ("__weakref__", "_client", "_lock", "_loop", "_pid", "_shared", "_thread", "closed")

    def __init__(self, client: AsyncInkit) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pid: int | None = None  # the process that started the thread
        self._shared = _Shared()
        self.closed = False
        _ALL.add(self)

    def __del__(self) -> None:
        # Like an unclosed file: one ResourceWarning, and the resources are released
        # anyway, here without waiting (this may run on any thread, the loop's included).
        if getattr(self, "_loop", None) is not None and not self.closed:
            warnings.warn(_UNCLOSED, ResourceWarning, stacklevel=1, source=self)
            self._stop()

    # -- calls ---------------------------------------------------------------------------

    def call(self, function: Callable[Q, Awaitable[T]], /, *args: Q.args, **kwargs: Q.kwargs) -> T:
        """Run ``await function(*args, **kwargs)`` on the loop and return its outcome.

        Raises:
            InkitError: Called from a running event loop, or after ``close()``.
        """
        _refuse_running_loop()
        call: _Call[T] = self._submit(lambda: function(*args, **kwargs))
        try:
            while not call.ended.wait(_WAKE):
                pass
        except BaseException:
            self._cancel(call)
            raise
        task = call.task
        assert task is not None  # noqa: S101 - set before the task could end
        if task.cancelled() and self.closed:
            raise InkitError(_CLOSED_UNDER_WAY)
        return task.result()

    def call_now(self, make: Callable[[], T]) -> T:
        """Run the plain function *make* on the loop thread and return what it returns."""
        return self.call(_made, make)

    def _submit(self, work: Callable[[], Awaitable[T]]) -> _Call[T]:
        call: _Call[T] = _Call()
        context = contextvars.copy_context()
        with self._lock:
            self._loop_for_calls().call_soon_threadsafe(call.start, work, context, self._shared)
        return call

    def _cancel(self, call: _Call[Any]) -> None:
        """Cancel *call*'s task and give it ``_GRACE`` seconds to wind down."""
        loop = cast("asyncio.AbstractEventLoop", self._loop)  # the call was submitted to it
        with contextlib.suppress(RuntimeError):  # closed meanwhile: the task has ended
            loop.call_soon_threadsafe(call.cancel)
        call.ended.wait(_GRACE)

    def _loop_for_calls(self) -> asyncio.AbstractEventLoop:
        """The running loop, started on first use (under the lock)."""
        if self.closed:
            raise InkitError(_CLOSED)
        if self._loop is None:
            return self._start()
        if self._pid != os.getpid():  # pragma: no cover - in a forked child (test_after_a_fork)
            # The parent's loop thread stayed there: this process starts its own, and the
            # client opens new connections in it (the inherited ones are dropped, unused).
            _LEFT_BY_FORK.append(self._loop)
            return self._start()
        return self._loop

    def _start(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.new_event_loop()
        thread = threading.Thread(
            target=_serve,
            args=(loop, self._client, self._shared),
            name=f"inkit-blocking-{next(_names)}",
            daemon=True,
        )
        thread.start()
        self._loop, self._thread, self._pid = loop, thread, os.getpid()
        _OPEN.add(self)
        return loop

    def start(self) -> None:
        """Start the loop thread now, unless it runs already."""
        _refuse_running_loop()
        with self._lock:
            self._loop_for_calls()

    # -- iterators -----------------------------------------------------------------------

    def iterate(self, items: AsyncIterator[T]) -> Generator[T, None, None]:
        """Pull *items* one at a time through the loop; leaving early closes them there."""
        while True:
            item = self.call(_next, items, self._shared)
            if isinstance(item, _End):
                return
            try:
                yield item
            except BaseException:  # closed (break, close(), dropped) or thrown into
                self._close_iterator(items)
                raise

    def _close_iterator(self, items: AsyncIterator[Any]) -> None:
        aclose: Callable[[], Awaitable[object]] | None = getattr(items, "aclose", None)
        if aclose is None or self.closed or self._pid != os.getpid():
            return  # the loop's wind-down closes what is left open (shutdown_asyncgens)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self.call(aclose)
        else:  # collected on a loop thread (this one, or another's): never block there
            with contextlib.suppress(InkitError):
                self._submit(aclose)

    # -- closing -------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the loop (its calls are cancelled), close the client, end the thread.

        Idempotent; each step is bounded (``_GRACE``), so it returns within about 20 s
        whatever the loop is doing.

        Raises:
            InkitError: Called from a running event loop.
            Exception: What closing the ``AsyncInkit`` raised.
        """
        _refuse_running_loop()
        thread = self._stop()
        if thread is None:
            return
        thread.join(4 * _GRACE + 1)
        if thread.is_alive():  # pragma: no cover - each step of the wind-down is bounded
            _log.warning("The BlockingInkit loop thread %s did not end in time", thread.name)
        if self._shared.failures:
            raise self._shared.failures.pop()

    def _stop(self) -> threading.Thread | None:
        """Mark closed and tell the loop to stop; the thread to wait for, if any."""
        with self._lock:
            if self.closed:
                return None
            self.closed = True
            _OPEN.discard(self)
            loop, thread = self._loop, self._thread
            if loop is None or thread is None:
                return None  # never started: nothing was opened
            if self._pid != os.getpid():  # pragma: no cover - in a forked child
                _LEFT_BY_FORK.append(loop)  # the parent's, as it is
                return None
            loop.call_soon_threadsafe(loop.stop)
            return thread

    def after_fork_in_child(self) -> None:  # pragma: no cover - in a forked child
        """Replace the lock (another thread may have held it) and forget the parent's calls."""
        self._lock = threading.Lock()
        self._shared = _Shared()


def _close_all_at_exit() -> None:
    """Close the clients still open when the interpreter exits (the loop threads still run)."""
    for runner in list(_OPEN):
        try:
            runner.close()
        except Exception:  # noqa: BLE001 - one client's failure must not stop the others
            _log.exception("Closing a BlockingInkit at exit failed")


def _after_fork_in_child() -> None:  # pragma: no cover - in a forked child
    for runner in list(_ALL):
        runner.after_fork_in_child()


atexit.register(_close_all_at_exit)
if hasattr(os, "register_at_fork"):  # pragma: no branch - POSIX
    os.register_at_fork(after_in_child=_after_fork_in_child)


# -- the blocking resources: each method is the async one, adapted ------------------------


class _Method(Generic[P, R]):
    """A blocking method: the async resource method of the same name, run on the loop.

    *adapt* turns the async method, bound to the resource's async counterpart, into the
    blocking callable; it gets every argument as given, so nothing is spelled twice.
    """

    __slots__ = ("_adapt", "_name")

    def __init__(
        self,
        method: Callable[..., object],
        adapt: Callable[[_BlockingResource, Callable[..., Any]], Callable[P, R]],
    ) -> None:
        self._adapt = adapt
        self._name = method.__name__

    def __set_name__(self, owner: type, name: str) -> None:
        # The async method is found by name: the attribute must bear the method's own.
        if name != self._name:
            raise TypeError(f"{owner.__name__}.{name} adapts {self._name}, not {name}")

    @overload
    def __get__(self, instance: None, owner: type) -> Self: ...
    @overload
    def __get__(self, instance: _BlockingResource, owner: type | None = None) -> Callable[P, R]: ...
    def __get__(
        self, instance: _BlockingResource | None, owner: type | None = None
    ) -> Self | Callable[P, R]:
        if instance is None:
            return self
        return self._adapt(instance, getattr(instance.asynchronous, self._name))


def _blocking(method: Callable[Concatenate[Any, P], Awaitable[T]]) -> _Method[P, T]:
    """``await resource.method(...)`` as a blocking call: its result, or its exception."""

    def adapt(resource: _BlockingResource, bound: Callable[P, Awaitable[T]]) -> Callable[P, T]:
        def call(*args: P.args, **kwargs: P.kwargs) -> T:
            return resource.runner_for_call().call(bound, *args, **kwargs)

        return call

    return _Method(method, adapt)


def _blocking_iterator(
    method: Callable[Concatenate[Any, P], AsyncIterator[T]],
) -> _Method[P, Generator[T, None, None]]:
    """``async for x in resource.method(...)`` as a plain iterator (a generator)."""

    def adapt(
        resource: _BlockingResource, bound: Callable[P, AsyncIterator[T]]
    ) -> Callable[P, Generator[T, None, None]]:
        def call(*args: P.args, **kwargs: P.kwargs) -> Generator[T, None, None]:
            runner = resource.runner_for_call()
            # Made on the loop, as the async method is called: its checks raise here.
            return runner.iterate(runner.call_now(lambda: bound(*args, **kwargs)))

        return call

    return _Method(method, adapt)


def _blocking_listing(
    method: Callable[Concatenate[Any, P], L], face: Callable[[_LoopThread, L], R]
) -> _Method[P, R]:
    """``resource.list(...)``: a listing iterated with plain ``for`` (*face*: its class)."""

    def adapt(resource: _BlockingResource, bound: Callable[P, L]) -> Callable[P, R]:
        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            runner = resource.runner_for_call()
            return face(runner, runner.call_now(lambda: bound(*args, **kwargs)))

        return call

    return _Method(method, adapt)


def _blocking_stream(
    method: Callable[Concatenate[Any, P], DownloadStream],
) -> _Method[P, BlockingDownloadStream]:
    """``resource.stream(...)``: a ``DownloadStream`` entered with plain ``with``."""

    def adapt(
        resource: _BlockingResource, bound: Callable[P, DownloadStream]
    ) -> Callable[P, BlockingDownloadStream]:
        def call(*args: P.args, **kwargs: P.kwargs) -> BlockingDownloadStream:
            runner = resource.runner_for_call()
            # Made on the loop, as the async method is called: its checks raise here.
            return BlockingDownloadStream(runner, runner.call_now(lambda: bound(*args, **kwargs)))

        return call

    return _Method(method, adapt)


class BlockingDownloadStream:
    """A download's body as it arrives, in a thread: the blocking face of ``DownloadStream``.

    ```python
    with client.render.stream(render_id) as stream:
        for chunk in stream:
            sink.write(chunk)
    ```

    Entering sends the request (on the client's loop) and returns once the body
    begins; each chunk is one round trip to the loop; leaving (the end, ``break``, an
    exception) closes the answer and gives the concurrency slot back.
    """

    __slots__ = ("_runner", "_stream")

    def __init__(self, runner: _LoopThread, stream: DownloadStream) -> None:
        """Run *stream* on *runner*'s loop."""
        self._runner = runner
        self._stream = stream

    def __enter__(self) -> Self:
        """Send the request; return once the body begins (see ``DownloadStream``)."""
        self._runner.call(self._stream.__aenter__)
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close the answer and give the slot back."""
        self._runner.call(self._stream.aclose)

    def __iter__(self) -> Iterator[bytes]:
        """The body's chunks (``for chunk in stream``), once the stream is entered."""
        return self._runner.iterate(self._runner.call_now(self._stream.__aiter__))

    @property
    def content_length(self) -> int | None:
        """The size the server declared (``None``: not declared, or not entered yet)."""
        return self._stream.content_length

    @property
    def content_type(self) -> str | None:
        """The ``Content-Type`` the server declared (``None``: none, or not entered yet)."""
        return self._stream.content_type

    @property
    def received(self) -> int:
        """Bytes handed over so far."""
        return self._stream.received

    def __repr__(self) -> str:
        """Say how far it got; never a URL or header."""
        return repr(self._stream).replace("DownloadStream", "BlockingDownloadStream", 1)


class BlockingListing(Generic[T]):
    """Every record of a listing: ``for render in client.render.list(...)``.

    The blocking face of ``Listing``: pages are fetched one at a time as the iteration
    reaches them; each ``for`` starts again from the first page; ``.pages()`` gives the
    ``Page`` records. Leaving the loop early stops the listing at once.
    """

    __slots__ = ("_records", "_runner")

    def __init__(self, runner: _LoopThread, records: Listing[Any]) -> None:
        """Iterate *records* through *runner*'s loop."""
        self._runner = runner
        self._records: Listing[Any] = records

    def __iter__(self) -> Iterator[T]:
        """Iterate over every record across all pages."""
        return self._runner.iterate(self._runner.call_now(self._records.__aiter__))

    def pages(self) -> Generator[Page[T], None, None]:
        """Iterate over the pages, each one fetched when the previous one is consumed."""
        return self._runner.iterate(self._runner.call_now(self._records.pages))


class BlockingBatchList(BlockingListing["Batch"]):
    """Every batch of a listing: ``for batch in client.batch.list(...)``."""

    __slots__ = ()


class _BlockingResource:
    """What every blocking resource holds: its client, and the async resource it adapts."""

    __slots__ = ("_inkit", "_runner", "asynchronous")

    def __init__(
        self, inkit: BlockingInkit, runner: _LoopThread, asynchronous: APIResource
    ) -> None:
        self._inkit = inkit
        self._runner = runner
        self.asynchronous = asynchronous
        """The ``AsyncInkit`` resource whose methods this one runs."""

    def runner_for_call(self) -> _LoopThread:
        """The client's loop thread, unless this client (or its original) is closed."""
        if self._inkit.is_closed:
            raise InkitError(_CLOSED)
        return self._runner

    def __repr__(self) -> str:
        """Name the async resource this one runs."""
        return f"<{type(self).__name__} of {self.asynchronous!r}>"


class BlockingBatchResource(_BlockingResource):
    """``client.flow_batch`` of a ``BlockingInkit``: ``BatchResource``'s methods, blocking.

    Each method takes exactly the arguments of the ``BatchResource`` method of the same
    name, raises the same errors, and returns its result; ``iter_many`` and ``watch``
    return plain iterators, ``list`` a ``BlockingBatchList``.
    """

    __slots__ = ()

    get = _blocking(BatchResource.get)
    """``batch = client.batch.get(batch_id)``: see ``BatchResource.get``."""

    # The one method with overloads: typing cannot carry overloads through a ParamSpec,
    # so they are spelled here; tests/unit/test_blocking.py holds them to the async ones.
    @overload
    def get_many(
        self,
        batch_ids: Iterable[str],
        *,
        return_exceptions: Literal[False] = False,
        deadline: float | None = None,
    ) -> list[Batch]: ...

    @overload
    def get_many(
        self,
        batch_ids: Iterable[str],
        *,
        return_exceptions: Literal[True],
        deadline: float | None = None,
    ) -> list[Batch | InkitError]: ...

    def get_many(self, *args: Any, **kwargs: Any) -> list[Batch] | list[Batch | InkitError]:
        """``client.batch.get_many(ids)``: see ``BatchResource.get_many``."""
        resource = cast("BatchResource", self.asynchronous)
        return self.runner_for_call().call(resource.get_many, *args, **kwargs)

    iter_many = _blocking_iterator(BatchResource.iter_many)
    """``for batch_id, result in client.batch.iter_many(ids):``, in completion order.

    See ``BatchResource.iter_many``. Leaving the loop early (``break``) stops the lookups
    under way before the loop goes on; ``contextlib.closing(...)`` does it at a point of
    your choice.
    """

    watch = _blocking_iterator(BatchResource.watch)
    """Iterate as ``for snapshot in client.batch.watch(batch_id)``; see ``BatchResource.watch``."""

    wait = _blocking(BatchResource.wait)
    """``batch = client.batch.wait(batch_id, timeout=600)``: see ``BatchResource.wait``."""

    list = _blocking_listing(BatchResource.list, BlockingBatchList)
    """``for batch in client.batch.list(...)``: see ``BatchResource.list``."""


class BlockingDocumentBatchResource(BlockingBatchResource):
    """``client.batch`` of a ``BlockingInkit``: everything above, plus ``create``."""

    __slots__ = ()

    create = _blocking(DocumentBatchResource.create)
    """``created = client.batch.create(template_id=..., renders=[...])``.

    See ``DocumentBatchResource.create``.
    """


class _BlockingDownloading(_BlockingResource):
    """``download_many`` of a blocking resource whose records have files."""

    __slots__ = ()

    # Overloads: typing cannot carry them through a ParamSpec, so they are spelled here;
    # tests/unit/test_blocking.py holds them to the async ones.
    @overload
    def download_many(
        self,
        ids: Iterable[str],
        directory: str | os.PathLike[str],
        *,
        return_exceptions: Literal[False] = False,
        max_size: int = 4_294_967_296,
        deadline: float | None = None,
    ) -> list[Path]: ...

    @overload
    def download_many(
        self,
        ids: Iterable[str],
        directory: str | os.PathLike[str],
        *,
        return_exceptions: Literal[True],
        max_size: int = 4_294_967_296,
        deadline: float | None = None,
    ) -> list[Path | InkitError]: ...

    def download_many(self, *args: Any, **kwargs: Any) -> list[Path] | list[Path | InkitError]:
        """``paths = client.render.download_many(ids, directory)``: see ``download_many``.

        Runs on the client's loop, with its concurrency: see the async resource's method.
        """
        resource = cast("DownloadingResource", self.asynchronous)
        return self.runner_for_call().call(resource.download_many, *args, **kwargs)


class BlockingRenderResource(_BlockingDownloading):
    """``client.render`` of a ``BlockingInkit``: ``RenderResource``'s methods, blocking.

    ``stream`` returns a ``BlockingDownloadStream``: ``with ... as stream: for chunk in
    stream``.
    """

    __slots__ = ()

    create = _blocking(RenderResource.create)
    """``created = client.render.create(...)``: see ``RenderResource.create``."""
    get = _blocking(RenderResource.get)
    """``render = client.render.get(render_id)``: see ``RenderResource.get``."""
    list = _blocking_listing(RenderResource.list, BlockingListing[Render])
    """``for render in client.render.list(...)``: see ``RenderResource.list``."""
    delete = _blocking(RenderResource.delete)
    """``client.render.delete(render_id)``: see ``RenderResource.delete``."""
    download = _blocking(RenderResource.download)
    """``path = client.render.download(render_id, path)``: see ``RenderResource.download``."""
    stream = _blocking_stream(RenderResource.stream)
    """``with client.render.stream(render_id) as stream:``: see ``RenderResource.stream``."""


class BlockingDocumentResource(_BlockingDownloading):
    """``client.document`` of a ``BlockingInkit``: ``DocumentResource``'s methods, blocking.

    ``stream`` returns a ``BlockingDownloadStream``: ``with ... as stream: for chunk in
    stream``.
    """

    __slots__ = ()

    get = _blocking(DocumentResource.get)
    """``document = client.document.get(document_id)``: see ``DocumentResource.get``."""
    list = _blocking_listing(DocumentResource.list, BlockingListing[Document])
    """``for document in client.document.list(...)``: see ``DocumentResource.list``."""
    delete = _blocking(DocumentResource.delete)
    """``client.document.delete(document_id)``: see ``DocumentResource.delete``."""
    download = _blocking(DocumentResource.download)
    """``path = client.document.download(document_id, path)``: see ``DocumentResource``."""
    stream = _blocking_stream(DocumentResource.stream)
    """``with client.document.stream(document_id) as stream:``: see ``DocumentResource``."""


class BlockingTemplateResource(_BlockingResource):
    """``client.template`` of a ``BlockingInkit``: ``TemplateResource``'s methods, blocking."""

    __slots__ = ()

    create = _blocking(TemplateResource.create)
    """``template = client.template.create(...)``: see ``TemplateResource.create``."""
    get = _blocking(TemplateResource.get)
    """``template = client.template.get(template_id)``: see ``TemplateResource.get``."""
    list = _blocking_listing(TemplateResource.list, BlockingListing[Template])
    """``for template in client.template.list(...)``: see ``TemplateResource.list``."""


class BlockingFolderResource(_BlockingResource):
    """``client.folder`` of a ``BlockingInkit``: ``FolderResource``'s methods, blocking."""

    __slots__ = ()

    list = _blocking_listing(FolderResource.list, BlockingListing[Folder])
    """``for folder in client.folder.list(...)``: see ``FolderResource.list``."""


class BlockingFlowResource(_BlockingResource):
    """``client.flow`` of a ``BlockingInkit``: ``FlowResource``'s methods, blocking."""

    __slots__ = ()

    invoke = _blocking(FlowResource.invoke)
    """``created = client.flow.invoke(flow_id=..., ...)``: see ``FlowResource.invoke``."""
    list_invocations = _blocking_listing(
        FlowResource.list_invocations, BlockingListing[FlowInvocation]
    )
    """``for invocation in client.flow.list_invocations(...)``: see ``FlowResource``."""


# -- the client ----------------------------------------------------------------------------


def _arguments_of(
    source: Callable[Concatenate[Any, P], object],
) -> Callable[[Callable[Concatenate[S, ...], R]], Callable[Concatenate[S, P], R]]:
    """Give the decorated method *source*'s parameters, for type checkers and ``inspect``.

    The method itself receives them as ``*args, **kwargs`` and passes them on as given,
    so a parameter *source* gains needs no change here.
    """

    def apply(target: Callable[Concatenate[S, ...], R]) -> Callable[Concatenate[S, P], R]:
        target.__signature__ = inspect.signature(source)  # type: ignore[attr-defined]
        return target

    return apply


class BlockingInkit(ClientSettings):
    """A client for synchronous code: ``AsyncInkit``'s calls, as blocking methods.

    For Celery and RQ tasks, cron scripts and Django's synchronous views: one client for
    the whole process, shared by every thread:

    ```python
    with BlockingInkit() as client:  # token from INKIT_API_TOKEN
        batch = client.batch.get("rb_6WtDgF7RGqdS5Uzea9neZJ")
    ```

    It takes exactly ``AsyncInkit``'s arguments (see ``AsyncInkit`` for each), with
    their meaning, defaults and checks (errors raise here). It runs one ``AsyncInkit``
    on one event loop in a daemon thread (``inkit-blocking-N``), started by the first
    call or by ``with``: every thread shares its connection pool, its concurrency
    slots and its throttle, and may call it at the same moment. A blocking call
    returns when the async call does, so the bounds of the async call (``timeout``,
    ``max_retries``, the throttle's ``max_wait``, ``wait``'s ``timeout``) bound it; an
    exception in the calling thread while it waits (Ctrl-C) cancels the call on the
    loop, waits up to 5 s for it to wind down, and propagates.

    Never call it from async code (a thread where an event loop runs): that raises
    ``InkitError``, as the call would stall that loop; use ``AsyncInkit`` there.

    After ``os.fork()``, a client made (and even used) before the fork works in the
    child with a loop thread and connections of its own; the parent's stay untouched.

    Close it with ``close()`` or ``with``. One still open when the interpreter exits is
    closed then; one dropped without being closed warns (``ResourceWarning``) and closes
    itself in the background.
    """

    batch: BlockingDocumentBatchResource
    """Document batches (``/batch``): get, get_many, iter_many, list, wait, watch, create."""
    flow_batch: BlockingBatchResource
    """Flow batches (``/invoke/batch``): get, get_many, iter_many, list, wait, watch."""
    render: BlockingRenderResource
    """Renders (``/render``): create, get, list, delete, download, stream, download_many."""
    document: BlockingDocumentResource
    """Documents in Inkit Storage (``/document``): get, list, delete, download, stream,
    download_many."""
    template: BlockingTemplateResource
    """Templates (``/template``): create, get, list."""
    folder: BlockingFolderResource
    """Folders (``/folder``): list."""
    flow: BlockingFlowResource
    """Flows (``/invoke``): invoke, list_invocations."""

    @_arguments_of(AsyncInkit.__init__)
    def __init__(self, *args: Any, **kwargs: Any) -> None:  # noqa: ANN401 - AsyncInkit's
        # The arguments are AsyncInkit's, passed on as given; it checks every one here,
        # in the caller's thread.
        client = AsyncInkit(*args, **kwargs)
        self._runner = _LoopThread(client)
        self._owner = True
        self._bind(client)

    def _bind(self, client: AsyncInkit) -> None:
        self._client = client
        self._engine = client._engine  # noqa: SLF001 - the options it shows are its client's
        self._closed = False
        self.batch = BlockingDocumentBatchResource(self, self._runner, client.batch)
        self.flow_batch = BlockingBatchResource(self, self._runner, client.flow_batch)
        self.render = BlockingRenderResource(self, self._runner, client.render)
        self.document = BlockingDocumentResource(self, self._runner, client.document)
        self.template = BlockingTemplateResource(self, self._runner, client.template)
        self.folder = BlockingFolderResource(self, self._runner, client.folder)
        self.flow = BlockingFlowResource(self, self._runner, client.flow)

    @_arguments_of(AsyncInkit.with_options)
    def with_options(self, **changes: Any) -> BlockingInkit:  # noqa: ANN401 - AsyncInkit's
        """Return a client with other per-call options, over the same loop, pool and throttle.

        Takes exactly ``AsyncInkit.with_options``'s arguments. Closing the variant closes
        only the variant; closing the original closes everything, the variants included.

        Raises:
            TypeError: An option has the wrong type.
            ValueError: An option has an impossible value.
        """
        variant = copy.copy(self)
        variant._owner = False  # noqa: SLF001 - a copy of this class
        variant._bind(self._client.with_options(**changes))  # noqa: SLF001
        return variant

    # -- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> Self:
        """Start the loop thread (so misuse from async code fails here) and return the client.

        Raises:
            InkitError: Called from async code, or on a closed client.
        """
        if self.is_closed:
            raise InkitError(_CLOSED)
        self._runner.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close the client (see ``close``)."""
        self.close()

    def close(self) -> None:
        """Close the client; calls afterwards raise ``InkitError``.

        Idempotent. Closing the client (not a ``with_options`` variant) cancels the calls
        under way in other threads (they raise ``InkitError``), closes the connection
        pool and ends the loop thread; it returns within about 20 s whatever the loop is
        doing. Closing a variant closes only the variant. In a forked child, closing a
        client leaves the parent's loop and connections alone.

        Raises:
            InkitError: Called from async code (a thread where an event loop runs).
        """
        _refuse_running_loop()
        self._closed = True
        if self._owner:
            self._runner.close()

    @property
    def is_closed(self) -> bool:
        """Whether ``close()`` was called on this client (or on its original)."""
        return self._closed or self._runner.closed

    def __repr__(self) -> str:
        """Describe the client without its token."""
        state = " closed" if self.is_closed else ""
        return (
            f"<BlockingInkit base_url={self.base_url!r} max_retries={self.max_retries}"
            f" max_concurrency={self.max_concurrency}{state}>"
        )
