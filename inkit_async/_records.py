"""The records of renders, documents, templates, folders and flow invocations.

Frozen, slotted, keyword-only attrs classes, structured by the package's one converter
(``_converter.py``) like ``Batch``. Their fields are the ones the official SDKs'
sources (inkit-python, inkit-nodejs, inkit-go) and Inkit's documentation pages show;
``docs/resources.md`` says which source shows which. The API documents these records
less precisely than batches, so:

- every field but ``id`` is optional (``None`` when the API sent none, or sent null);
- a status is the plain string the API sent (open set: no value is refused);
- every field the SDK does not name is kept in ``extra``, a mapping of the API's own
  field names to their JSON values, and ``to_dict`` puts them back where they came
  from: ``record.to_dict()`` is the JSON the API sent, with known fields checked.

Times are timezone-aware UTC ``datetime`` objects; counters are integers >= 0; a JSON
object the SDK does not model (``merge_parameters``, ``destinations``) is a plain
``dict`` of the JSON as sent.
"""

from __future__ import annotations

from collections.abc import Mapping  # noqa: TC003 - cattrs resolves the annotations at run time
from datetime import datetime  # noqa: TC003 - cattrs resolves the annotations at run time
from typing import Any, Final

import attrs

__all__ = [
    "CreatedRender",
    "Creator",
    "Document",
    "FlowInvocation",
    "Folder",
    "Render",
    "Template",
]

#: The status a render reports once its PDF can be fetched (inkit-go's README: "make
#: sure your render status is Completed"; before that it is "In Progress").
RENDER_COMPLETED: Final = "Completed"


def _plain(record: object) -> dict[str, Any]:
    # Imported here: _converter imports this module for the records it converts.
    from ._converter import plain  # noqa: PLC0415

    return plain(record)


def _extra() -> Mapping[str, Any]:
    return {}


@attrs.frozen(kw_only=True)
class Creator:
    """Who created a document, template or folder: a user, or an API key (``name``)."""

    first_name: str | None = None
    """The user's first name."""
    last_name: str | None = None
    """The user's last name."""
    name: str | None = None
    """The name of the API key."""
    extra: Mapping[str, Any] = attrs.field(factory=_extra)
    """Fields the SDK does not name, as the API sent them."""

    def to_dict(self) -> dict[str, Any]:
        """The record as plain data, in the API's JSON shape. See ``inkit_async.to_dict``."""
        return _plain(self)


@attrs.frozen(kw_only=True)
class Render:
    """One rendered document (``rend_...``): what ``client.render.get`` returns.

    Its PDF can be fetched once ``status`` is ``"Completed"`` (``is_completed``); before
    that, while it is ``"In Progress"``, the API answers 404 to the PDF.
    """

    id: str
    """The render id, e.g. ``rend_1sCg6aBeK4Dt3qYVmA4BGB``."""
    name: str | None = None
    """The render's name."""
    status: str | None = None
    """``"In Progress"``, then ``"Completed"``; any other string the API sends is kept."""
    template_id: str | None = None
    """The template it was rendered from (``tmpl_...``)."""
    folder_id: str | None = None
    """The folder it is stored in (``fold_...``)."""
    width: float | None = None
    """The page width, in ``unit``."""
    height: float | None = None
    """The page height, in ``unit``."""
    unit: str | None = None
    """``in`` or ``cm``."""
    merge_parameters: Mapping[str, Any] | None = None
    """The merge fields it was rendered with."""
    pdf_url: str | None = None
    """Where the API serves its PDF."""
    html_url: str | None = None
    """Where the API serves its HTML."""
    expire_after_n_views: int | None = None
    """How many views it expires after."""
    expire_at: datetime | None = None
    """When it expires."""
    created_at: datetime | None = None
    """When it was created."""
    updated_at: datetime | None = None
    """When it last changed."""
    extra: Mapping[str, Any] = attrs.field(factory=_extra)
    """Fields the SDK does not name, as the API sent them."""

    @property
    def is_completed(self) -> bool:
        """Whether the render is done (``status == "Completed"``): its PDF can be fetched."""
        return self.status == RENDER_COMPLETED

    def to_dict(self) -> dict[str, Any]:
        """The record as plain data, in the API's JSON shape. See ``inkit_async.to_dict``."""
        return _plain(self)


@attrs.frozen(kw_only=True)
class CreatedRender:
    """What ``client.render.create`` and ``client.flow.invoke`` return.

    ``id`` is the new render (a flow's invocation is a render too, ``rend_...``); each
    ``*_piece_id`` is the id of the document delivered to that destination, when the
    render goes there. Follow it with ``client.render.get(created.id)``.
    """

    id: str
    """The new render's id (``rend_...``)."""
    document_id: str | None = None
    """The Inkit Storage document (``doc_...``), when it goes to Inkit Storage."""
    mail_piece_id: str | None = None
    """The Sepire mail piece."""
    salesforce_piece_id: str | None = None
    """The Salesforce document."""
    docusign_piece_id: str | None = None
    """The DocuSign document."""
    magic_link_piece_id: str | None = None
    """The Magic Link document."""
    amazon_s3_piece_id: str | None = None
    """The Amazon S3 document."""
    google_drive_piece_id: str | None = None
    """The Google Drive document."""
    dropbox_piece_id: str | None = None
    """The Dropbox document."""
    box_piece_id: str | None = None
    """The Box document."""
    extra: Mapping[str, Any] = attrs.field(factory=_extra)
    """Fields the SDK does not name, as the API sent them."""

    def to_dict(self) -> dict[str, Any]:
        """The record as plain data, in the API's JSON shape. See ``inkit_async.to_dict``."""
        return _plain(self)


@attrs.frozen(kw_only=True)
class Document:
    """A document in Inkit Storage (``doc_...``): what ``client.document.get`` returns."""

    id: str
    """The document id, e.g. ``doc_5VVwNSVFgsscbxJj9N38iL``."""
    name: str | None = None
    """The document's name."""
    description: str | None = None
    """Its description."""
    status: str | None = None
    """Its generation status, as the API sent it."""
    render_id: str | None = None
    """The render that made it (``rend_...``)."""
    folder_id: str | None = None
    """The folder it is in (``fold_...``)."""
    expire_after_n_views: int | None = None
    """How many views it expires after."""
    expire_views_left: int | None = None
    """How many views it has left."""
    expire_at: datetime | None = None
    """When it expires."""
    created_by: Creator | None = None
    """Who made it."""
    created_at: datetime | None = None
    """When it was made."""
    modified_at: datetime | None = None
    """When it last changed."""
    extra: Mapping[str, Any] = attrs.field(factory=_extra)
    """Fields the SDK does not name, as the API sent them."""

    def to_dict(self) -> dict[str, Any]:
        """The record as plain data, in the API's JSON shape. See ``inkit_async.to_dict``."""
        return _plain(self)


@attrs.frozen(kw_only=True)
class Template:
    """A document template (``tmpl_...``): what ``client.template.get`` returns."""

    id: str
    """The template id, e.g. ``tmpl_12345``."""
    name: str | None = None
    """The template's name."""
    description: str | None = None
    """Its description."""
    source: str | None = None
    """What it was made from: ``html``, ``docx`` or ``pdf``."""
    width: float | str | None = None
    """The page width of an HTML template, in ``unit`` (a number, or the string the
    API sent: its pages document it as either)."""
    height: float | str | None = None
    """The page height of an HTML template, in ``unit`` (a number or a string)."""
    unit: str | None = None
    """``in`` or ``cm``."""
    version: int | None = None
    """Its version number."""
    file_name: str | None = None
    """The file name of a DOCX or PDF template's source."""
    merge_variables: Any = None
    """Its merge fields, as the API sent them."""
    destinations: Any = None
    """Where documents made from it go, as the API sent them."""
    created_by: Creator | None = None
    """Who made it."""
    created_at: datetime | None = None
    """When it was made."""
    updated_at: datetime | None = None
    """When it last changed."""
    extra: Mapping[str, Any] = attrs.field(factory=_extra)
    """Fields the SDK does not name (``file``, ``html``, ``version_history``, ...)."""

    def to_dict(self) -> dict[str, Any]:
        """The record as plain data, in the API's JSON shape. See ``inkit_async.to_dict``."""
        return _plain(self)


@attrs.frozen(kw_only=True)
class Folder:
    """A private folder of Inkit Storage (``fold_...``), as ``client.folder.list`` yields it."""

    id: str
    """The folder id."""
    name: str | None = None
    """The folder's name."""
    description: str | None = None
    """Its description."""
    created_by: Creator | None = None
    """Who made it."""
    created_at: datetime | None = None
    """When it was made."""
    updated_at: datetime | None = None
    """When it last changed."""
    extra: Mapping[str, Any] = attrs.field(factory=_extra)
    """Fields the SDK does not name, as the API sent them."""

    def to_dict(self) -> dict[str, Any]:
        """The record as plain data, in the API's JSON shape. See ``inkit_async.to_dict``."""
        return _plain(self)


@attrs.frozen(kw_only=True)
class FlowInvocation:
    """One launch of a flow, as ``client.flow.list_invocations`` yields it."""

    id: str
    """The invocation id."""
    name: str | None = None
    """The name it was launched with."""
    description: str | None = None
    """The flow's description."""
    status: str | None = None
    """Its status, as the API sent it."""
    destination_status: str | None = None
    """The status of its destinations, as the API sent it."""
    destinations: Mapping[str, Any] | None = None
    """Per-destination data, keyed by destination name, as the API sent it."""
    flow_id: str | None = None
    """The flow launched (``flow_...``)."""
    flow_name: str | None = None
    """The flow's name."""
    flows_batch_id: str | None = None
    """The flow batch it belongs to (``fb_...``), if any."""
    merge_parameters: Mapping[str, Any] | None = None
    """The merge fields it was launched with."""
    created_at: datetime | None = None
    """When it was launched."""
    extra: Mapping[str, Any] = attrs.field(factory=_extra)
    """Fields the SDK does not name, as the API sent them."""

    def to_dict(self) -> dict[str, Any]:
        """The record as plain data, in the API's JSON shape. See ``inkit_async.to_dict``."""
        return _plain(self)


#: The records that keep the fields they do not name in ``extra``.
KEEPING_EXTRA: Final = (Creator, Render, CreatedRender, Document, Template, Folder, FlowInvocation)
