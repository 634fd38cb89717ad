"""Folders (``/folder``): list the private folders of Inkit Storage.

The path from the official SDKs' routing maps (inkit-python, inkit-nodejs) and Inkit's
page on listing folders.
"""

from __future__ import annotations

from .._pagination import ListFilters, Listing
from .._records import Folder
from ._base import APIResource, checked_deadline

__all__ = ["FolderResource"]

_PATH = "/folder"


class FolderResource(APIResource):
    """Folders, ``client.folder``: list."""

    __slots__ = ()

    def __repr__(self) -> str:
        """Name the resource's path."""
        return f"<{type(self).__name__} {_PATH}>"

    def list(
        self,
        *,
        page_size: int | None = None,
        sort: str | None = None,
        search: str | None = None,
        deadline: float | None = None,
    ) -> Listing[Folder]:
        """List private folders, all pages: ``async for folder in client.folder.list()``.

        Nothing is sent until iteration starts; pages are fetched one at a time. Only
        the filters you set are sent.

        Args:
            page_size: Folders per request, 1 to 1000 (the API's default is 25).
            sort: A field name, with a leading ``-`` for descending (``created_at``).
            search: Only folders matching this text.
            deadline: Seconds each page's fetch may take (``None``: the client's).

        Raises:
            ValueError, TypeError: A filter is invalid (raised here, before any request).
        """
        filters = ListFilters(page_size=page_size, sort=sort, search=search)
        return self._listing(
            _PATH, Folder, filters, name="folder", deadline=checked_deadline(deadline)
        )
