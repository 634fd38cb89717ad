"""Downloads to a file, as a stream, and many at once into a directory.

A resource with a binary body (a render's PDF, a stored document) binds a
``Downloads`` to its path and hands its methods on; every download goes through the
engine's corridor (``_streaming.py``). The choices, and why:

- **A file appears complete or not at all.** The body is written to a temporary file
  in the target's directory (``.<name>.<random>.part``, made by ``tempfile.mkstemp``,
  so readable by its owner only), closed, then renamed over the target
  (``os.replace``, atomic within one file system). On any failure or cancellation the
  temporary file is removed and nothing is left at the target (an earlier file there
  is left as it was). A process killed outright (``SIGKILL``, a power loss) can leave
  a ``.part`` file behind, never a partial file under the final name. No ``fsync``:
  after an operating-system crash a renamed file may lack its last bytes; the
  page cache has them otherwise.
- **Complete means present.** Only the rename puts a file under its final name, so
  ``download_many`` takes a regular file already at an id's name as complete and does
  not fetch it again (resuming an interrupted run); a directory or other special
  file there is not taken for one.
- **File names from ids** (``filename_for``): an id is hostile. It is
  percent-encoded as one URL path segment (``encode_segment``: only ``A-Z a-z 0-9 -
  . _ ~`` and ``%XX`` remain, so no slash, backslash, NUL or ``..`` can reach the
  file system), a leading ``.`` is encoded too (``%2E``: no hidden files, nothing that
  looks like a temporary file), and a name longer than 200 bytes is refused
  (``ValueError``, before anything is sent), leaving room for the temporary name in
  the 255 bytes file systems allow. The mapping is one-to-one: two ids never share a
  file (on a case-sensitive file system).
- **Writes stay on the event loop, in pieces.** Each piece of the body (64 KiB raw,
  at most 256 KiB decoded) is written with ``os.write`` at once: such a write to the
  page cache took about 0.15 ms on the benchmark's machine, less than handing it to a
  thread; writing on a pool of threads grew memory (each connection keeps reading
  while its piece is written) and did not shorten the loop's longest stalls, which
  come from the kernel's writeback throttling (docs/downloads.md has the figures).
  Memory holds a piece or two per download, whatever the file's size.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Final, Self, cast

from ._bounded import run_bounded
from ._exceptions import InkitError
from ._paths import encode_segment
from ._streaming import DEFAULT_MAX_DOWNLOAD_SIZE, open_download
from ._validate import check_int, check_optional_seconds

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Awaitable, Callable

    from ._engine import Engine
    from ._streaming import Download, ReadyWait

__all__ = [
    "MAX_FILENAME_BYTES",
    "DownloadStream",
    "Downloads",
    "checked_path",
    "filename_for",
    "is_complete",
]

#: Longest file name ``download_many`` makes from an id, in bytes: the temporary file's
#: name adds 15 to it, within the 255 bytes most file systems allow.
MAX_FILENAME_BYTES: Final = 200


def filename_for(resource_id: str, suffix: str, name: str = "id") -> str:
    """The file name ``download_many`` gives *resource_id*: safe, one-to-one (see the module).

    Raises:
        TypeError: *resource_id* is not a ``str``.
        ValueError: It is not a valid id (``encode_segment``), or its file name would be
            longer than ``MAX_FILENAME_BYTES``.
    """
    segment = encode_segment(resource_id, name)
    if segment.startswith("."):
        segment = "%2E" + segment[1:]
    filename = segment + suffix
    if len(filename) > MAX_FILENAME_BYTES:  # ASCII only: characters are bytes
        raise ValueError(
            f"{name} makes a file name of {len(filename):,} bytes, over {MAX_FILENAME_BYTES}"
        )
    return filename


def checked_path(name: str, value: object) -> Path:
    """*value* (a ``str`` or ``os.PathLike`` of one, not empty) as a ``Path``, else raise.

    Raises:
        TypeError: *value* is neither (``bytes`` paths are not taken).
        ValueError: It is empty.
    """
    kind = type(value).__name__
    text: object = value
    if isinstance(value, os.PathLike):
        text = os.fspath(cast("os.PathLike[str]", value))  # str or bytes: checked below
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a str or os.PathLike, got {kind}")
    if not text:
        raise ValueError(f"{name} must not be empty")
    return Path(text)


def _make_directory(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)


def is_complete(path: Path) -> bool:
    """Whether a download's final name holds a file: a regular one, not followed through a link."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def _limits(max_size: object, deadline: object) -> tuple[int, float | None]:
    """A download's ``max_size`` (bytes, >= 1) and ``deadline`` (seconds > 0, or ``None``)."""
    size = check_int("max_size", max_size, minimum=1)
    return size, check_optional_seconds("deadline", deadline, above=True)


def _rename(temp: str, target: Path) -> None:
    """Put the complete temporary file under *target* (atomic: see the module)."""
    Path(temp).replace(target)


def _discard(fd: int | None, temp: str) -> None:
    """Close (if still open) and remove the temporary file of a download that did not finish."""
    if fd is not None:
        os.close(fd)
    Path(temp).unlink(missing_ok=True)


def _write_all(fd: int, chunk: bytes) -> None:
    view = memoryview(chunk)
    while view:
        view = view[os.write(fd, view) :]


class DownloadStream:
    """A download's body as it arrives, for callers that pipe the bytes on.

    ```python
    async with client.render.stream(render_id) as stream:
        async for chunk in stream:
            await sink.write(chunk)
    ```

    Entering sends the request (with the client's retries, until the first byte);
    leaving, by the end, ``break``, an exception or cancellation, closes the answer and
    gives the client's concurrency slot back, which the stream holds while it is open.
    Each chunk is at most 256 KiB; memory does not grow with the file. The call's
    ``deadline`` bounds the whole stream, the time your loop takes included; a failure
    after the first chunk raises its error (the bytes you have are not sent again).
    """

    __slots__ = ("_chunks", "_download", "_entered", "_open")

    def __init__(self, open_: Callable[[], Awaitable[Download]]) -> None:
        """A stream that *open_* opens when entered (resources make these)."""
        self._open = open_
        self._download: Download | None = None
        self._chunks: AsyncGenerator[bytes] | None = None
        self._entered = False

    async def __aenter__(self) -> Self:
        """Send the request; return once the body begins.

        Raises:
            InkitError: The stream was entered before; or the download's error.
        """
        if self._entered:
            raise InkitError("A DownloadStream can be entered once; ask for a new one.")
        self._entered = True
        self._download = await self._open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Close the answer and give the slot back."""
        await self.aclose()

    def __aiter__(self) -> AsyncGenerator[bytes]:
        """The body's chunks, decoded (``async for chunk in stream``).

        Raises:
            InkitError: The stream was not entered (``async with ... as stream:``).
        """
        if self._download is None:
            raise InkitError("Enter the stream first: `async with ... as stream: async for ...`")
        if self._chunks is None:
            self._chunks = self._download.chunks()
        return self._chunks

    @property
    def content_length(self) -> int | None:
        """The size the server declared (``None``: not declared, or not entered yet)."""
        return None if self._download is None else self._download.content_length

    @property
    def content_type(self) -> str | None:
        """The ``Content-Type`` the server declared (``None``: none, or not entered yet)."""
        return None if self._download is None else self._download.content_type

    @property
    def received(self) -> int:
        """Bytes handed over so far."""
        return 0 if self._download is None else self._download.received

    async def aclose(self) -> None:
        """Close the answer and give the slot back; idempotent."""
        download = self._download
        if download is None:
            return
        try:
            if self._chunks is not None:
                await self._chunks.aclose()
        finally:
            await download.aclose()

    def __repr__(self) -> str:
        """Say how far it got; never a URL or header."""
        state = "open" if self._download is not None else "not entered"
        return f"<DownloadStream {state} received={self.received}>"


class Downloads:
    """Downloads of one resource's binary body (``/render/{id}/pdf``), bound to an engine."""

    __slots__ = ("_engine", "_name", "_path", "_ready", "_suffix")

    def __init__(
        self,
        engine: Engine,
        *,
        name: str,
        path: Callable[[str], str],
        ready: ReadyWait | None = None,
        suffix: str = ".pdf",
    ) -> None:
        """Downloads of *path* (an id's encoded segment -> the API path), named *name*.

        *name* names the calls in traces (``render.download``) and the id in errors;
        *ready*: how long a 404 is asked again (``None``: a 404 is final); *suffix*:
        what ``many`` appends to each file name.
        """
        self._engine = engine
        self._name = name
        self._path = path
        self._ready = ready
        self._suffix = suffix

    def _checked(
        self, resource_id: object, max_size: object, deadline: object
    ) -> tuple[str, int, float | None]:
        segment = encode_segment(resource_id, f"{self._name}_id")
        return (segment, *_limits(max_size, deadline))

    async def to_path(
        self,
        resource_id: str,
        path: str | os.PathLike[str],
        *,
        params: dict[str, str | int] | None = None,
        max_size: int = DEFAULT_MAX_DOWNLOAD_SIZE,
        deadline: float | None = None,
    ) -> Path:
        """Download *resource_id*'s body to *path*, atomically; return *path*.

        Raises:
            TypeError, ValueError: An argument is invalid (nothing is sent).
            IsADirectoryError: *path* is a directory (nothing is sent).
            OSError: The temporary file cannot be made or written (nothing is left).
            InkitError: The download failed (nothing is left at *path*).
        """
        segment, size, seconds = self._checked(resource_id, max_size, deadline)
        target = checked_path("path", path)
        if target.is_dir() and not target.is_symlink():  # the rename would fail: ask nothing
            raise IsADirectoryError(errno.EISDIR, "path is a directory", str(target))
        end = self._engine.end_of(seconds)
        work = self._write(segment, target, params, end, size)
        attributes = {f"inkit.{self._name}.id": segment}
        return await self._engine.traced(f"{self._name}.download", attributes, work)

    def stream(
        self,
        resource_id: str,
        *,
        params: dict[str, str | int] | None = None,
        max_size: int = DEFAULT_MAX_DOWNLOAD_SIZE,
        deadline: float | None = None,
    ) -> DownloadStream:
        """A ``DownloadStream`` of *resource_id*'s body; nothing is sent until it is entered.

        Raises:
            TypeError, ValueError: An argument is invalid.
        """
        segment, size, seconds = self._checked(resource_id, max_size, deadline)
        engine = self._engine

        async def open_() -> Download:
            work = open_download(
                engine,
                self._path(segment),
                params=params,
                end=engine.end_of(seconds),
                max_size=size,
                ready=self._ready,
            )
            attributes = {f"inkit.{self._name}.id": segment}
            return await engine.traced(f"{self._name}.stream", attributes, work)

        return DownloadStream(open_)

    async def many(
        self,
        resource_ids: Iterable[str],
        directory: str | os.PathLike[str],
        *,
        return_exceptions: bool = False,
        max_size: int = DEFAULT_MAX_DOWNLOAD_SIZE,
        deadline: float | None = None,
    ) -> list[Path] | list[Path | InkitError]:
        """Download each id's body into *directory* (``filename_for``); results in input order.

        An id whose file is there already is not fetched again (its path is its
        result). Identical ids are downloaded once. The downloads run on as many worker
        tasks as the client has concurrency slots; *deadline* bounds them all together.
        With *return_exceptions*, a download that failed with an ``InkitError`` has that
        error in its place; else the first one is raised and the others are cancelled
        (their temporary files removed). File-system errors (``OSError``) are raised.

        Raises:
            TypeError, ValueError: An argument or id is invalid (nothing is sent).
        """
        if isinstance(resource_ids, str | bytes) or not isinstance(resource_ids, Iterable):
            raise TypeError(f"{self._name}_ids must be an iterable of ids, not a single value")
        ids = list(resource_ids)
        size, seconds = _limits(max_size, deadline)
        folder = checked_path("directory", directory)
        names = {rid: filename_for(rid, self._suffix, f"{self._name}_id") for rid in ids}
        _make_directory(folder)
        end = self._engine.end_of(seconds)

        async def fetch(resource_id: str) -> Path:
            target = folder / names[resource_id]
            if is_complete(target):
                return target
            segment = encode_segment(resource_id, f"{self._name}_id")
            return await self._write(segment, target, None, end, size)

        results = await self._engine.traced(
            f"{self._name}.download_many",
            {f"inkit.{self._name}.count": len(names)},
            run_bounded(
                list(names),
                fetch,
                workers=self._engine.options.max_concurrency,
                return_exceptions=return_exceptions,
            ),
        )
        return [results[rid] for rid in ids]

    async def _write(
        self,
        segment: str,
        target: Path,
        params: dict[str, str | int] | None,
        end: float | None,
        max_size: int,
    ) -> Path:
        """Stream the body into a temporary file beside *target*, then rename it over."""
        # Made before anything is sent: an unwritable directory costs no request.
        fd, temp = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name[:MAX_FILENAME_BYTES]}.", suffix=".part"
        )
        open_fd: int | None = fd
        renamed = False
        try:
            download = await open_download(
                self._engine,
                self._path(segment),
                params=params,
                end=end,
                max_size=max_size,
                ready=self._ready,
            )
            try:
                async with contextlib.aclosing(download.chunks()) as chunks:
                    async for chunk in chunks:
                        _write_all(fd, chunk)
            finally:
                await download.aclose()
            open_fd = None
            os.close(fd)
            _rename(temp, target)
            renamed = True
        finally:
            if not renamed:
                _discard(open_fd, temp)
        return target
