"""GraphQL types of authentication: tokens, service API keys, audit entries."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from loyalty.audit.models import AuditEntry as AuditEntryRow
from loyalty.auth import models
from loyalty.auth.principal import Role
from loyalty.auth.service import TokenPair
from loyalty.graphql.context import Info


@strawberry.type(description="Credentials of a login session.")
class AuthTokens:
    access_token: str = strawberry.field(
        description="Short-lived JWT; send as `Authorization: Bearer <accessToken>`."
    )
    token_type: str = strawberry.field(description="Always `Bearer`.")
    expires_in: int = strawberry.field(description="Seconds until the access token expires.")
    refresh_token: str = strawberry.field(
        description="Opaque, single use: exchange it with `refreshToken` for a new pair. "
        "Keep it secret; using it twice ends the session."
    )
    refresh_expires_at: datetime = strawberry.field(
        description="When the refresh token expires (UTC)."
    )

    @classmethod
    def from_pair(cls, pair: TokenPair) -> AuthTokens:
        return cls(
            access_token=pair.access_token,
            token_type="Bearer",
            expires_in=pair.expires_in,
            refresh_token=pair.refresh_token,
            refresh_expires_at=pair.refresh_expires_at,
        )


@strawberry.type(description="A channel system's API key (the key itself is never shown again).")
class ApiKey(relay.Node):
    id: relay.NodeID[int]
    name: str = strawberry.field(description="What the key is for.")
    prefix: str = strawberry.field(description="First characters of the key, to recognise it.")
    channel: str = strawberry.field(description="Channel the key acts for.")
    store_id: str | None = strawberry.field(description="Store the key is bound to, if any.")
    scopes: list[str] = strawberry.field(description="Extra scopes, e.g. `pii`.")
    created_at: datetime = strawberry.field(description="Creation time (UTC).")
    created_by: str = strawberry.field(description="Admin who created it.")
    last_used_at: datetime | None = strawberry.field(
        description="Last authenticated request (UTC, to within five minutes)."
    )
    revoked_at: datetime | None = strawberry.field(description="Revocation time, if revoked.")

    @classmethod
    def from_model(cls, row: models.ApiKey) -> ApiKey:
        return cls(
            id=row.id,
            name=row.name,
            prefix=row.prefix,
            channel=row.channel,
            store_id=row.store_id,
            scopes=list(row.scopes or []),
            created_at=row.created_at,
            created_by=row.created_by,
            last_used_at=row.last_used_at,
            revoked_at=row.revoked_at,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[ApiKey | None]:
        ids = [_int_or_none(raw) for raw in node_ids]
        if info.context.principal.role is not Role.ADMIN:
            return [None for _ in ids]
        rows = {row.id: row for row in await models.ApiKey.filter(id__in=[i for i in ids if i])}
        return [cls.from_model(rows[i]) if i in rows else None for i in ids]


@strawberry.type(description="A page of API keys.")
class ApiKeyConnection(relay.Connection[ApiKey]):
    """API keys in ascending id order with keyset cursors."""


@strawberry.type(description="One audited action: who did what to which object, and when.")
class AuditEntry:
    id: strawberry.ID = strawberry.field(description="Entry id.")
    at: datetime = strawberry.field(description="When it happened (UTC).")
    actor: str = strawberry.field(description="Subject of the caller (`member:12`, `apikey:3`).")
    actor_role: str = strawberry.field(description="Role of the caller.")
    action: str = strawberry.field(description="What was done, e.g. `Mutation.adjustPoints`.")
    target_type: str = strawberry.field(description="Kind of object acted on, e.g. `Member`.")
    target_id: str = strawberry.field(description="Id of the object acted on.")
    details: JSON = strawberry.field(description="Ids, counts and outcome; no personal data.")
    request_id: str | None = strawberry.field(description="Request id of the call.")

    @classmethod
    def from_model(cls, row: AuditEntryRow) -> AuditEntry:
        return cls(
            id=strawberry.ID(str(row.id)),
            at=row.at,
            actor=row.actor,
            actor_role=row.actor_role,
            action=row.action,
            target_type=row.target_type,
            target_id=row.target_id,
            details=row.details,
            request_id=row.request_id,
        )


@strawberry.type(description="A page of audit entries, newest first.")
class AuditEntryConnection(relay.Connection[AuditEntry]):
    """Audit entries in descending id order with keyset cursors."""


def _int_or_none(raw: Any) -> int | None:
    try:
        return int(raw)
    except (TypeError, ValueError):
        return None
