"""What renders and documents share: a file each, downloaded (``_download.py``).

``client.render`` and ``client.document`` each bind one ``Downloads`` to their file's
path (``/render/{id}/pdf``, ``/download/{id}``) and hand their ``download`` and
``stream`` calls to it; ``download_many``, the same for both, is written here once.

Both wait while their file answers 404 (``ReadyWait``: every 2 s for up to 30 s after
the first 404, within the call's deadline). A render's PDF answers 404 while the render
is in progress (inkit-go's README); a document's file is the render's PDF delivered to
Inkit Storage, and ``render.create`` names the document before the render is done;
inkit-python asks ``download/{id}`` again on 404 as it does ``render/{id}/pdf`` (15
times, 2 s apart). The price: an id that does not exist fails after 30 s, not at once
(sooner with ``deadline=``); each ask is reported as a ``RetryEvent``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, overload

from .._download import Downloads
from .._streaming import ReadyWait
from .._validate import check_optional_int
from ._base import APIResource

if TYPE_CHECKING:
    import os
    from collections.abc import Callable, Iterable
    from pathlib import Path

    from .._engine import Engine
    from .._exceptions import InkitError

__all__ = ["DownloadingResource", "page_params"]

#: How a render's PDF and a document's file are waited for while they answer 404.
FILE_READY: ReadyWait = ReadyWait()


def page_params(page: object) -> dict[str, str | int] | None:
    """The query of a download of one *page* (``?page=N``), or ``None`` for the whole file.

    Raises:
        TypeError: *page* is not an ``int`` (a ``bool`` is not) or ``None``.
        ValueError: *page* is below 1.
    """
    number = check_optional_int("page", page, minimum=1)
    return None if number is None else {"page": number}


class DownloadingResource(APIResource):
    """A resource whose records each have a file: ``download``, ``stream``, ``download_many``."""

    __slots__ = ("_downloads",)

    def __init__(self, engine: Engine, *, name: str, path: Callable[[str], str]) -> None:
        """Send every call through *engine*; *path* maps an encoded id to its file's path."""
        super().__init__(engine)
        self._downloads = Downloads(engine, name=name, path=path, ready=FILE_READY)

    @overload
    async def download_many(
        self,
        ids: Iterable[str],
        directory: str | os.PathLike[str],
        *,
        return_exceptions: Literal[False] = False,
        max_size: int = 4_294_967_296,
        deadline: float | None = None,
    ) -> list[Path]: ...

    @overload
    async def download_many(
        self,
        ids: Iterable[str],
        directory: str | os.PathLike[str],
        *,
        return_exceptions: Literal[True],
        max_size: int = 4_294_967_296,
        deadline: float | None = None,
    ) -> list[Path | InkitError]: ...

    async def download_many(
        self,
        ids: Iterable[str],
        directory: str | os.PathLike[str],
        *,
        return_exceptions: bool = False,
        max_size: int = 4_294_967_296,
        deadline: float | None = None,
    ) -> list[Path] | list[Path | InkitError]:
        """Download each id's file into *directory* as ``<id>.pdf``; results in input order.

        The downloads run on as many tasks as the client has concurrency slots, each
        written atomically (a temporary file, renamed when whole). *directory* is made
        (with its parents) when missing. Resumable: an id whose file is there already
        is not fetched again (its path is its result), so running the same call after
        an interruption fetches only what is missing. Identical ids are fetched once.
        Each id becomes one safe file name (percent-encoded, no separator, no leading
        dot: docs/downloads.md). A file that is not there yet (404) is waited for, as
        ``download`` waits.

        Args:
            ids: The ids (an iterable of ``str``; a single ``str`` is refused).
            directory: Where the files go (``str`` or ``os.PathLike``).
            return_exceptions: Give each id its outcome: its ``Path``, or the
                ``InkitError`` it ended with. Else the first error is raised and the
                downloads still under way are cancelled (their temporary files removed).
            max_size: Most bytes each file may have (default 4 GiB).
            deadline: Seconds the whole call may take (``None``: no bound but the
                client's per-attempt ``timeout``).

        Raises:
            TypeError, ValueError: An argument or an id is invalid, or an id's file name
                would be longer than 200 bytes (nothing is sent).
            OSError: *directory* cannot be made, or a file cannot be written (not
                returned in an id's place: it is not the API's answer).
            InkitError: Without *return_exceptions*, the first download that failed.
        """
        return await self._downloads.many(
            ids,
            directory,
            return_exceptions=return_exceptions,
            max_size=max_size,
            deadline=deadline,
        )
