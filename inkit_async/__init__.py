"""inkit-async: an asyncio-native client for the Inkit document-generation API.

::

    from inkit_async import AsyncInkit

    async with AsyncInkit() as client:  # token from INKIT_API_TOKEN
        batch = await client.batch.get("rb_6WtDgF7RGqdS5Uzea9neZJ")
        print(batch.status, batch.progress.completed, "/", batch.total)
"""

from __future__ import annotations

import typing
import warnings
from contextlib import suppress as _suppress

import attrs

from ._blocking import BlockingInkit
from ._cache import BatchCache, CacheStats
from ._client import AsyncInkit
from ._converter import deprecated_converter as _deprecated_converter
from ._converter import to_dict
from ._download import DownloadStream
from ._events import ClientEvent, EventCallback, PauseEvent, RateEvent, RetryEvent
from ._exceptions import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AsyncioRequiredError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    DeadlineExceededError,
    InkitError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    UnprocessableEntityError,
    WaitTimeoutError,
)
from ._models import (
    Batch,
    BatchDestinations,
    BatchStatus,
    CreatedBatch,
    DestinationProgress,
    Page,
    RenderSpec,
)
from ._pagination import BatchList, Listing
from ._protocols import AsyncHTTPClient, AsyncHTTPTransport, HTTPTimeout
from ._records import CreatedRender, Creator, Document, FlowInvocation, Folder, Render, Template
from ._responses import ResponseInfo, response_of
from ._retry import Backoff
from ._throttle import Throttle, ThrottleState
from ._version import __version__
from .resources import (
    BatchResource,
    DocumentBatchResource,
    DocumentResource,
    FlowResource,
    FolderResource,
    RenderResource,
    TemplateResource,
)

# OpenTelemetry's observer, when opentelemetry-api is installed: imported now, with the
# package, rather than by the first client, which may be made inside a running event
# loop (`_state.shared_observers` then finds it imported).
with _suppress(ImportError):  # opentelemetry-api is not installed
    from . import _tracing  # noqa: F401  # pyright: ignore[reportUnusedImport]

__all__ = [
    "APIConnectionError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncHTTPClient",
    "AsyncHTTPTransport",
    "AsyncInkit",
    "AsyncioRequiredError",
    "AuthenticationError",
    "Backoff",
    "BadRequestError",
    "Batch",
    "BatchCache",
    "BatchDestinations",
    "BatchList",
    "BatchResource",
    "BatchStatus",
    "BlockingInkit",
    "CacheStats",
    "ClientEvent",
    "ConflictError",
    "CreatedBatch",
    "CreatedRender",
    "Creator",
    "DeadlineExceededError",
    "DestinationProgress",
    "Document",
    "DocumentBatchResource",
    "DocumentResource",
    "DownloadStream",
    "EventCallback",
    "FlowInvocation",
    "FlowResource",
    "Folder",
    "FolderResource",
    "HTTPTimeout",
    "InkitError",
    "InternalServerError",
    "Listing",
    "NotFoundError",
    "Page",
    "PauseEvent",
    "PermissionDeniedError",
    "RateEvent",
    "RateLimitError",
    "Render",
    "RenderResource",
    "RenderSpec",
    "ResponseInfo",
    "RetryEvent",
    "Template",
    "TemplateResource",
    "Throttle",
    "ThrottleState",
    "UnprocessableEntityError",
    "WaitTimeoutError",
    "__version__",
    "response_of",
    "to_dict",
]

if typing.TYPE_CHECKING:
    import cattrs

    converter: cattrs.Converter
    """Deprecated: use ``to_dict`` (or a record's ``to_dict()``); removed in the next release."""
else:

    def __getattr__(name: str) -> object:
        """Serve ``converter``, deprecated, with a warning; it is not in ``dir()``."""
        if name == "converter":
            warnings.warn(
                "inkit_async.converter is deprecated and will be removed in the next "
                "release: use inkit_async.to_dict(record) or record.to_dict() for plain data",
                DeprecationWarning,
                stacklevel=2,
            )
            return _deprecated_converter()
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _present_as_public() -> None:
    """Give every exported class this package as its module, as httpx does.

    Tracebacks and reprs then say ``inkit_async.NotFoundError``, not the private module
    it is defined in; pickle finds the classes under that name too. Annotations are
    resolved first: cattrs reads them through the defining module's globals.
    """
    for name in __all__:
        value = globals()[name]
        if isinstance(value, type) and value.__module__.startswith(__name__ + "."):
            if attrs.has(value):
                attrs.resolve_types(value)
            value.__module__ = __name__


_present_as_public()
