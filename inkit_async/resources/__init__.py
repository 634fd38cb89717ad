"""API resources: thin classes that know paths, parameters and record types.

They validate arguments and call the client's request core; they hold no state of their
own beyond the client and their path.
"""

from __future__ import annotations

from ._batches import BatchResource, DocumentBatchResource
from ._documents import DocumentResource
from ._flows import FlowResource
from ._folders import FolderResource
from ._renders import RenderResource
from ._templates import TemplateResource

__all__ = [
    "BatchResource",
    "DocumentBatchResource",
    "DocumentResource",
    "FlowResource",
    "FolderResource",
    "RenderResource",
    "TemplateResource",
]
