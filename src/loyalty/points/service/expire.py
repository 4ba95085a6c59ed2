"""Expiry: lots past their ``expires_at`` lose what is left of them (one EXPIRE entry per lot).

The sweep only writes the books: a due lot is already out of every balance and draw before
it runs (see :mod:`loyalty.points.service.ledger`), so its progress changes no answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import structlog
from tortoise.transactions import in_transaction

from loyalty import clock, db
from loyalty.points.errors import LedgerRace
from loyalty.points.models import PointsEntry
from loyalty.points.service import ledger
from loyalty.points.service.earn import RETRIES

log = structlog.get_logger(__name__)

CHUNK_SIZE = 1000


@dataclass
class ExpirySweep:
    """One run of :func:`expire_due`: points expired per member, and the members that failed
    (logged, skipped for this run; their lots stay out of every balance meanwhile)."""

    expired: dict[int, int] = field(default_factory=dict)
    failed: list[int] = field(default_factory=list)


async def due_member_ids() -> list[int]:
    """Every member holding a lot past its expiry with points left, ascending (one
    statement): the selection of a points expiry run."""
    rows = (
        await PointsEntry.filter(remaining__gt=0, expires_at__lt=clock.now())
        .distinct()
        .order_by("member_id")
        .values_list("member_id", flat=True)
    )
    return [int(r) for r in rows]  # type: ignore[call-overload]


async def members_with_due_lots(*, limit: int = CHUNK_SIZE, after: int = 0) -> list[int]:
    """Members holding at least one lot past its expiry with points left, by id above
    ``after`` (keyset), at most ``limit``."""
    rows = (
        await PointsEntry.filter(remaining__gt=0, expires_at__lt=clock.now(), member_id__gt=after)
        .distinct()
        .order_by("member_id")
        .limit(limit)
        .values_list("member_id", flat=True)
    )
    return [int(r) for r in rows]  # type: ignore[call-overload]


@db.retry_conflicts
async def expire_member(*, member_id: int) -> int:
    """Expire every due lot of one member in one transaction; returns the points expired.

    Idempotent: a lot expires under the key ``expire:lot:<id>`` once; a second run (or a write
    that touched the member first) leaves nothing to expire. Raises :class:`LedgerRace` when
    the member's ledger keeps disagreeing with itself.
    """
    for attempt in range(RETRIES):
        try:
            async with in_transaction() as conn:
                await ledger.lock_member(conn, member_id)
                return await ledger.expire_due_lots(conn, member_id)
        except LedgerRace:
            log.warning("points.expire.retry", member_id=member_id, attempt=attempt)
    raise LedgerRace(f"could not expire lots of member {member_id}")


async def expire_due(*, chunk_size: int = CHUNK_SIZE) -> ExpirySweep:
    """Expire the due lots of every member who has some, ``chunk_size`` members at a time
    until none is left. A member whose expiry fails is logged, counted in ``failed`` and
    skipped for this run; the others carry on (the next run tries it again)."""
    sweep = ExpirySweep()
    after = 0
    while chunk := await members_with_due_lots(limit=chunk_size, after=after):
        for member_id in chunk:
            try:
                expired = await expire_member(member_id=member_id)
            except Exception:  # one member's books must not hold up everyone else's
                log.exception("points.expire.failed", member_id=member_id)
                sweep.failed.append(member_id)
                continue
            if expired:
                sweep.expired[member_id] = expired
        after = chunk[-1]
    return sweep


async def expire_member_outcome(*, member_id: int) -> str:
    """One member of an expiry run: ``expired`` when points expired, else ``nothing_due``
    (another write, or an earlier try of the chunk, expired them first)."""
    return "expired" if await expire_member(member_id=member_id) else "nothing_due"
