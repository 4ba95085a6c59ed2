"""Jobs of the points domain: thin wrappers over the services (cron, at least once)."""

from __future__ import annotations

from datetime import date
from typing import Any

import structlog

from loyalty import fanout
from loyalty.points import notify, service
from loyalty.points.service import expire
from loyalty.worker.context import JobContext

log = structlog.get_logger(__name__)

EXPIRE_DUE = "points_expire_due"


class _ExpiryChunk:
    def __init__(self, chunk: fanout.Chunk) -> None:
        self.chunk = chunk

    async def member(self, member_id: int) -> str:
        return await expire.expire_member_outcome(member_id=member_id)

    async def finish(self, outcomes: dict[int, str]) -> dict[str, int]:
        expired = [m for m, outcome in outcomes.items() if outcome == "expired"]
        await notify.balance_changed(self.chunk.redis, expired)
        return {}


async def _select(period: date) -> list[int]:
    return await expire.due_member_ids()


async def _prepare(chunk: fanout.Chunk) -> fanout.ChunkWork:
    return _ExpiryChunk(chunk)


fanout.register(
    fanout.BatchJob(
        name=EXPIRE_DUE,
        domain="points",
        action="expire_due",
        description="Expire the lots past their expiry (one EXPIRE entry per lot, idempotent)",
        select=_select,
        prepare=_prepare,
    )
)


async def points_expire_due(ctx: dict[str, Any]) -> int:
    """Hourly: start today's expiry run over every member with due lots; returns its id."""
    return await fanout.launch_from_cron(ctx, EXPIRE_DUE)


async def points_activate_pending(ctx: dict[str, Any]) -> int:
    """Activate pending points whose return window passed; returns the members touched."""
    members = await service.activate_pending()
    await notify.balance_changed(JobContext.of(ctx).redis, members)
    log.info("points.activate_pending", members=len(members))
    return len(members)
