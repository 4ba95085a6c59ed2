"""Jobs of the benefits domain."""

from __future__ import annotations

from typing import Any

import structlog

from loyalty.benefits import service
from loyalty.benefits.errors import ClaimNotFound

log = structlog.get_logger(__name__)


async def benefits_release_reservation(ctx: dict[str, Any], claim_id: int) -> bool:
    """Release one reservation if its hold has passed (queued at reserve time)."""
    try:
        row = await service.release(claim_id=claim_id, only_if_expired=True)
    except Exception as exc:  # a confirmed reservation or a vanished claim: nothing to do
        if not isinstance(exc, ClaimNotFound | service.ReservationNotActive):
            raise
        return False
    return str(row.status) == "RELEASED"


async def benefits_release_expired(ctx: dict[str, Any]) -> int:
    """Every minute: release every reservation past its hold time (the backstop)."""
    released = await service.release_expired()
    if released:
        log.info("benefits.release_expired", released=released)
    return released
