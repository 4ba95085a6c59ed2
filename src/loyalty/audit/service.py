"""Recording audit entries, inside the caller's transaction when one is given."""

from __future__ import annotations

from typing import Any

import structlog
from tortoise.backends.base.client import BaseDBAsyncClient

from loyalty import clock
from loyalty.audit.models import AuditEntry
from loyalty.auth.principal import Principal


async def record(
    *,
    actor: Principal,
    action: str,
    target_type: str,
    target_id: object,
    details: dict[str, Any] | None = None,
    connection: BaseDBAsyncClient | None = None,
) -> AuditEntry:
    """Append one entry. ``details`` must hold ids and counts only, never personal values."""
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    return await AuditEntry.create(
        at=clock.now(),
        actor=actor.subject,
        actor_role=actor.role.value,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        details=details or {},
        request_id=request_id,
        using_db=connection,
    )
