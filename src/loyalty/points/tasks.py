"""Jobs of the points domain: thin wrappers over the services (cron, at least once)."""

from __future__ import annotations

from typing import Any

import structlog

from loyalty.points import notify, service

log = structlog.get_logger(__name__)


async def points_expire_due(ctx: dict[str, Any]) -> int:
    """Expire lots past their expiry (idempotent per lot); returns the points expired."""
    sweep = await service.expire_due()
    await notify.balance_changed(ctx.get("redis"), sweep.expired)
    total = sum(sweep.expired.values())
    log.info(
        "points.expire_due", members=len(sweep.expired), points=total, failed=len(sweep.failed)
    )
    return total


async def points_activate_pending(ctx: dict[str, Any]) -> int:
    """Activate pending points whose return window passed; returns the members touched."""
    members = await service.activate_pending()
    await notify.balance_changed(ctx.get("redis"), members)
    log.info("points.activate_pending", members=len(members))
    return len(members)
