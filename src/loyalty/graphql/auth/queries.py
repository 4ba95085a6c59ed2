"""Queries of credential management and the audit log (admins only)."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry import relay

from loyalty.audit import service as audit
from loyalty.audit.models import AuditEntry as AuditEntryRow
from loyalty.auth import service as auth
from loyalty.graphql import ids, permissions
from loyalty.graphql.auth.types import ApiKey, ApiKeyConnection, AuditEntry, AuditEntryConnection
from loyalty.graphql.context import Info
from loyalty.graphql.pagination import check_first, decode_cursor, encode_cursor

permissions.register(
    {
        "Query.apiKeys": permissions.ADMIN,
        "Query.auditEntries": permissions.ADMIN,
    }
)


@strawberry.type
class AuthQuery:
    @strawberry.field(description="Service API keys in ascending id order. `first` is 1–100.")
    async def api_keys(
        self,
        info: Info,
        first: int = 20,
        after: str | None = None,
        include_revoked: Annotated[
            bool, strawberry.argument(description="Also list revoked keys.")
        ] = False,
    ) -> ApiKeyConnection:
        check_first(first, info.context.settings.max_page_size)
        after_id = int(decode_cursor(after)[0]) if after else None
        rows, has_next = await auth.list_api_keys(
            first=first, after_id=after_id, include_revoked=include_revoked
        )
        edges = [relay.Edge(cursor=encode_cursor(r.id), node=ApiKey.from_model(r)) for r in rows]
        return ApiKeyConnection(edges=edges, page_info=_page_info(edges, has_next, after))

    @strawberry.field(
        description="Audit log, newest first: admin and staff writes and personal data reads. "
        "`first` is 1–100."
    )
    async def audit_entries(
        self,
        info: Info,
        first: int = 20,
        after: str | None = None,
        target_type: Annotated[
            str | None,
            strawberry.argument(description="Only entries about this kind, e.g. `Member`."),
        ] = None,
        target_id: Annotated[
            str | None,
            strawberry.argument(
                description="Only entries about this object: its global id (as `Member.id`), "
                "which also selects its kind, or the id as recorded in `targetId`."
            ),
        ] = None,
        actor: Annotated[
            str | None, strawberry.argument(description="Only entries by this subject.")
        ] = None,
    ) -> AuditEntryConnection:
        check_first(first, info.context.settings.max_page_size)
        before_id = int(decode_cursor(after)[0]) if after else None
        kind, target_id = ids.target(target_id) if target_id is not None else (None, None)
        rows: list[AuditEntryRow] = []
        has_next = False
        if kind is None or target_type in (None, kind):  # else another kind than asked for
            rows, has_next = await audit.page(
                first=first,
                before_id=before_id,
                target_type=kind or target_type,
                target_id=target_id,
                actor=actor,
            )
        edges = [
            relay.Edge(cursor=encode_cursor(r.id), node=AuditEntry.from_model(r)) for r in rows
        ]
        return AuditEntryConnection(edges=edges, page_info=_page_info(edges, has_next, after))


def _page_info(edges: list[relay.Edge], has_next: bool, after: str | None) -> relay.PageInfo:
    return relay.PageInfo(
        has_next_page=has_next,
        has_previous_page=after is not None,
        start_cursor=edges[0].cursor if edges else None,
        end_cursor=edges[-1].cursor if edges else None,
    )
