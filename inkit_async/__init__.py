"""inkit-async: an asyncio-native client for the Inkit document-generation API.

::

    from inkit_async import AsyncInkit

    async with AsyncInkit() as client:  # token from INKIT_API_TOKEN
        batch = await client.batch.get("rb_6WtDgF7RGqdS5Uzea9neZJ")
        print(batch.status, batch.progress.completed, "/", batch.total)
"""

from __future__ import annotations

from ._client import AsyncInkit
from ._converter import converter
from ._exceptions import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
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
from ._pagination import BatchList
from ._retry import Backoff
from ._version import __version__
from .resources import BatchResource, DocumentBatchResource

__all__ = [
    "APIConnectionError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncInkit",
    "AuthenticationError",
    "Backoff",
    "BadRequestError",
    "Batch",
    "BatchDestinations",
    "BatchList",
    "BatchResource",
    "BatchStatus",
    "ConflictError",
    "CreatedBatch",
    "DestinationProgress",
    "DocumentBatchResource",
    "InkitError",
    "InternalServerError",
    "NotFoundError",
    "Page",
    "PermissionDeniedError",
    "RateLimitError",
    "RenderSpec",
    "UnprocessableEntityError",
    "WaitTimeoutError",
    "__version__",
    "converter",
]
