"""Expiry: lots past their ``expires_at`` lose what is left of them (one EXPIRE entry per lot)."""

from __future__ import annotations

import structlog
from tortoise.transactions import in_transaction

from loyalty import clock, db
from loyalty.points import sql
from loyalty.points.errors import LedgerRace
from loyalty.points.models import EntryKind, PointsEntry, SourceType
from loyalty.points.service import ledger
from loyalty.points.service.earn import RETRIES

log = structlog.get_logger(__name__)


async def members_with_due_lots(*, limit: int = 1000) -> list[int]:
    """Members holding at least one lot past its expiry with points left (set-based)."""
    rows = (
        await PointsEntry.filter(remaining__gt=0, expires_at__lt=clock.now())
        .distinct()
        .order_by("member_id")
        .limit(limit)
        .values_list("member_id", flat=True)
    )
    return [int(r) for r in rows]  # type: ignore[call-overload]


@db.retry_conflicts
async def expire_member(*, member_id: int) -> int:
    """Expire every due lot of one member in one transaction; returns the points expired.

    Idempotent: a lot expires under the key ``expire:lot:<id>`` once; a second run finds
    nothing left to expire.
    """
    for attempt in range(RETRIES):
        try:
            async with in_transaction() as conn:
                await ledger.lock_member(conn, member_id)
                await ledger.lock_account(conn, member_id)
                now = clock.now()
                lots = await PointsEntry.filter(
                    member_id=member_id, remaining__gt=0, expires_at__lt=now
                ).using_db(conn)
                total = 0
                for lot in sorted(lots, key=lambda lot: (lot.expires_at, lot.id)):
                    n = int(lot.remaining or 0)
                    state = await ledger.debit(conn, member_id, n)
                    if state is None:
                        raise LedgerRace("balance below the lot's remaining points")
                    changed = await sql.execute(
                        conn,
                        "UPDATE points_entry SET remaining = remaining - ? "
                        "WHERE id = ? AND remaining >= ?",
                        n,
                        lot.id,
                        n,
                    )
                    if changed != 1:
                        raise LedgerRace(f"lot {lot.id} changed under us")
                    await ledger.write_entry(
                        conn,
                        member_id=member_id,
                        kind=EntryKind.EXPIRE,
                        amount=-n,
                        key=f"expire:lot:{lot.id}",
                        source_type=SourceType.SYSTEM,
                        source_ref=str(lot.id),
                        allocations=[(lot.id, n)],
                        balance_after=state.balance,
                    )
                    total += n
                return total
        except LedgerRace:
            log.warning("points.expire.retry", member_id=member_id, attempt=attempt)
    raise LedgerRace(f"could not expire lots of member {member_id}")


async def expire_due(*, limit: int = 1000) -> dict[int, int]:
    """Expire due lots of up to ``limit`` members; returns ``{member_id: points expired}``."""
    result: dict[int, int] = {}
    for member_id in await members_with_due_lots(limit=limit):
        expired = await expire_member(member_id=member_id)
        if expired:
            result[member_id] = expired
    return result
