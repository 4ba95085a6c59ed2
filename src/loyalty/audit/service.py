"""Recording audit entries, inside the caller's transaction when one is given."""

from __future__ import annotations

from typing import Any

import structlog
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q

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
    related_id: object = None,
    connection: BaseDBAsyncClient | None = None,
) -> AuditEntry:
    """Append one entry. ``details`` must hold ids and counts only, never personal values.

    ``related_id`` names a second object of ``target_type`` the action was about (the member
    merged into the target): :func:`page` lists the entry under either id.
    """
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    return await AuditEntry.create(
        at=clock.now(),
        actor=actor.subject,
        actor_role=actor.role.value,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        related_id=None if related_id is None else str(related_id),
        details=details or {},
        request_id=request_id,
        using_db=connection,
    )


async def record_many(entries: list[dict[str, Any]]) -> None:
    """Append several entries at once (``record`` keyword arguments, without connection)."""
    if not entries:
        return
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    at = clock.now()
    rows = [
        AuditEntry(
            at=at,
            actor=e["actor"].subject,
            actor_role=e["actor"].role.value,
            action=e["action"],
            target_type=e["target_type"],
            target_id=str(e["target_id"]),
            details=e.get("details") or {},
            request_id=e.get("request_id") or request_id,
        )
        for e in entries
    ]
    if len(rows) == 1:
        await rows[0].save()  # one INSERT, no BEGIN/COMMIT around it
    else:
        await AuditEntry.bulk_create(rows)


async def page(
    *,
    first: int,
    before_id: int | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    actor: str | None = None,
) -> tuple[list[AuditEntry], bool]:
    """Entries newest first (descending id) before ``before_id``: ``(rows, has_next_page)``.

    ``target_id`` matches the entry's target or its related object (either merged member).
    """
    query = AuditEntry.all()
    if target_type is not None:
        query = query.filter(target_type=target_type)
    if target_id is not None:
        query = query.filter(Q(target_id=target_id) | Q(related_id=target_id))
    if actor is not None:
        query = query.filter(actor=actor)
    if before_id is not None:
        query = query.filter(id__lt=before_id)
    rows = await query.order_by("-id").limit(first + 1)
    return rows[:first], len(rows) > first
