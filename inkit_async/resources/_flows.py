"""Flows (``/invoke``): launch one flow, and list the launches.

Inkit's pages "Launch Flow" (``POST /invoke``) and "List Flow Statuses" (``GET
/invoke``) are the sources; no official SDK covers flows. Flow batches
(``/invoke/batch``) are ``client.flow_batch``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._pagination import ListFilters, Listing
from .._records import CreatedRender, FlowInvocation
from ._base import APIResource, checked_deadline, checked_text, optional_text, render_body
from ._renders import parse_created_render

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = ["FlowResource"]

_PATH = "/invoke"


class FlowResource(APIResource):
    """Flows, ``client.flow``: invoke one, list the invocations.

    Flow batches are ``client.flow_batch``.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        """Name the resource's path."""
        return f"<{type(self).__name__} {_PATH}>"

    async def invoke(
        self,
        *,
        flow_id: str,
        merge_parameters: Mapping[str, Any],
        name: str | None = None,
        deadline: float | None = None,
    ) -> CreatedRender:
        """Launch flow *flow_id* once with *merge_parameters* (``POST /invoke``).

        The answer names the invocation (``id``) and the document the flow delivers to
        each of its destinations (``document_id``, ``salesforce_piece_id``, ...).

        Not idempotent: retried only when it certainly did not reach the server or was
        refused with 429, as ``render.create``.

        Args:
            flow_id: The flow (``flow_...``).
            merge_parameters: The merge fields and their values (may be empty).
            name: A name for this launch, to track it by.
            deadline: Seconds the call may take in all (``None``: the client's).

        Raises:
            TypeError: An argument has the wrong type (nothing is sent).
            ValueError: *flow_id* is empty, or a value nests more than 64 levels deep
                or contains itself (nothing is sent).
            DeadlineExceededError: The deadline ran out, or could not be met.
        """
        checked_text("flow_id", flow_id)
        fields: dict[str, Any] = {"merge_parameters": merge_parameters}
        if optional_text("name", name) is not None:
            fields["name"] = name
        body = {"flow_id": flow_id, **render_body(fields, "")}
        seconds = checked_deadline(deadline)
        return await self._create(
            _PATH,
            body,
            parse_created_render,
            operation="flow.invoke",
            attributes={"inkit.flow.id": flow_id},
            end=self._engine.end_of(seconds),
        )

    def list_invocations(
        self,
        *,
        page_size: int | None = None,
        sort: str | None = None,
        search: str | None = None,
        data_id: str | Iterable[str] | None = None,
        destination_name: str | None = None,
        destination_status: str | None = None,
        deadline: float | None = None,
    ) -> Listing[FlowInvocation]:
        """List flow launches and their statuses, all pages (``GET /invoke``).

        ``async for invocation in client.flow.list_invocations(...)``. Nothing is sent
        until iteration starts; pages are fetched one at a time. Only the filters you
        set are sent.

        Args:
            page_size: Invocations per request, 1 to 1000 (the API's default is 25).
            sort: A field name, with a leading ``-`` for descending (``-created_at``).
            search: Only invocations matching this text.
            data_id: Only these renders: one id, or ids (sent comma-separated, as
                ``data-id``).
            destination_name: Only invocations with this destination.
            destination_status: Only invocations whose destination is in this state.
            deadline: Seconds each page's fetch may take (``None``: the client's).

        Raises:
            ValueError, TypeError: A filter is invalid (raised here, before any request).
        """
        filters = ListFilters(
            page_size=page_size,
            sort=sort,
            search=search,
            data_id=data_id,
            destination_name=destination_name,
            destination_status=destination_status,
        )
        return self._listing(
            _PATH, FlowInvocation, filters, name="flow", deadline=checked_deadline(deadline)
        )
