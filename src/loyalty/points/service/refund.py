"""Refunds as the ledger sees them, inside the refund's transaction.

- Points earned on refunded lines are reversed once: a pending earning is reduced without
  touching the balance; active points are clawed back up to the balance (the order's own lot
  first), the rest becomes a debt that later credits settle first. The balance never goes
  below zero.
- Points that paid for refunded lines return to the lots they came from, with their original
  expiry; the share that belonged to lots already expired is returned and expired at once
  (an EXPIRE entry), so it shows as breakage and is never revived.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from tortoise.backends.base.client import BaseDBAsyncClient

from loyalty import clock
from loyalty.points import sql
from loyalty.points.models import (
    EntryKind,
    PendingStatus,
    PointsAllocation,
    PointsEntry,
    SourceType,
)
from loyalty.points.service import ledger
from loyalty.points.service.ledger import AccountState


@dataclass(frozen=True)
class Reversal:
    clawed_back: int
    debt: int
    pending_cancelled: int
    state: AccountState


@dataclass(frozen=True)
class Return:
    returned: int
    forfeited: int
    state: AccountState


async def reverse_order_points(
    conn: BaseDBAsyncClient, *, member_id: int, order_id: int, amount: int, key: str
) -> Reversal:
    """Take back ``amount`` points earned on order ``order_id`` (``key`` is unique per refund)."""
    state = await ledger.lock_account(conn, member_id)
    if amount <= 0:
        return Reversal(0, 0, 0, state)
    cancelled = await sql.execute(
        conn,
        "UPDATE points_pending SET amount = amount - ?, "
        "status = CASE WHEN amount = ? THEN ? ELSE status END "
        "WHERE order_id = ? AND status = ? AND amount >= ?",
        amount,
        amount,
        PendingStatus.CANCELLED.value,
        order_id,
        PendingStatus.PENDING.value,
        amount,
    )
    if cancelled == 1:
        state = await ledger.change_pending(conn, member_id, -amount)
        return Reversal(0, 0, amount, state)

    take = min(amount, state.balance)
    if take > 0:
        debited = await ledger.debit(conn, member_id, take)
        if debited is None:
            raise ledger.LedgerRace("balance changed under the account lock")
        state = debited
        own_lots = list(
            await PointsEntry.filter(member_id=member_id, order_id=order_id, kind=EntryKind.EARN)
            .using_db(conn)
            .order_by("id")
            .values_list("id", flat=True)
        )
        taken = await ledger.draw(conn, member_id, take, prefer=own_lots)  # type: ignore[arg-type]
        await ledger.write_entry(
            conn,
            member_id=member_id,
            kind=EntryKind.REVERSE,
            amount=-take,
            key=f"{key}:reverse",
            source_type=SourceType.REFUND,
            source_ref=key,
            order_id=order_id,
            allocations=taken,
            balance_after=state.balance,
        )
    debt = amount - take
    if debt > 0:
        state = await ledger.add_debt(conn, member_id, debt)
        await ledger.write_entry(
            conn,
            member_id=member_id,
            kind=EntryKind.DEBT,
            amount=0,
            debt_delta=debt,
            key=f"{key}:debt",
            source_type=SourceType.REFUND,
            source_ref=key,
            order_id=order_id,
            balance_after=state.balance,
        )
    return Reversal(take, debt, 0, state)


async def redeemed_for_order(
    conn: BaseDBAsyncClient | None, *, member_id: int, channel: str, external_id: str
) -> list[PointsEntry]:
    """Redemptions that named this order as their reference, oldest first."""
    return list(
        await PointsEntry.filter(
            member_id=member_id,
            kind=EntryKind.REDEEM,
            order_channel=channel,
            order_external_id=external_id,
        )
        .using_db(conn)
        .order_by("id")
    )


async def return_redeemed_points(
    conn: BaseDBAsyncClient,
    *,
    member_id: int,
    redemptions: list[PointsEntry],
    amount: int,
    key: str,
    order_id: int,
) -> Return:
    """Give ``amount`` redeemed points back to the lots they were drawn from.

    Lots still valid are preferred (the latest expiry first); the share of lots already
    expired is returned and expired in the same step.
    """
    state = await ledger.lock_account(conn, member_id)
    if amount <= 0 or not redemptions:
        return Return(0, 0, state)
    ids = [r.id for r in redemptions]
    drawn = await PointsAllocation.filter(entry_id__in=ids).using_db(conn).order_by("id")
    restorations = await PointsEntry.filter(
        reverses_entry_id__in=ids, kind=EntryKind.RESTORE
    ).using_db(conn)
    restore_of = {e.id: e.reverses_entry_id for e in restorations}
    given_back: dict[tuple[int, int], int] = defaultdict(int)
    if restore_of:
        for alloc in await PointsAllocation.filter(entry_id__in=list(restore_of)).using_db(conn):
            source = restore_of[alloc.entry_id]  # type: ignore[attr-defined]
            given_back[(source, alloc.lot_id)] -= alloc.amount  # type: ignore[attr-defined]
    open_parts: dict[tuple[int, int], int] = defaultdict(int)
    for alloc in drawn:
        open_parts[(alloc.entry_id, alloc.lot_id)] += alloc.amount  # type: ignore[attr-defined]
    for part, back in given_back.items():
        open_parts[part] -= back
    lots = {
        lot.id: lot
        for lot in await PointsEntry.filter(id__in=[lot for _e, lot in open_parts]).using_db(conn)
    }
    now = clock.now()

    def valid(lot_id: int) -> bool:
        expires = lots[lot_id].expires_at
        return expires is None or expires >= now

    def preference(part: tuple[int, int]) -> tuple[int, float, int]:
        lot = lots[part[1]]
        if lot.expires_at is None:
            return (0, 0.0, -lot.id)
        return (0 if valid(lot.id) else 1, -lot.expires_at.timestamp(), -lot.id)

    left = amount
    plan: dict[int, list[tuple[int, int]]] = defaultdict(list)  # redemption → [(lot, n)]
    for part in sorted((p for p, n in open_parts.items() if n > 0), key=preference):
        if left == 0:
            break
        n = min(left, open_parts[part])
        plan[part[0]].append((part[1], n))
        left -= n
    returned = forfeited = 0
    for redemption_id, parts in sorted(plan.items()):
        live = [(lot, n) for lot, n in parts if valid(lot)]
        dead = [(lot, n) for lot, n in parts if not valid(lot)]
        live_total = sum(n for _lot, n in live)
        dead_total = sum(n for _lot, n in dead)
        for lot, n in live:
            await ledger.give_back(conn, lot, n)
        if live_total:
            state = await ledger.credit(conn, member_id, live_total)
        await ledger.write_entry(
            conn,
            member_id=member_id,
            kind=EntryKind.RESTORE,
            amount=live_total + dead_total,
            key=f"{key}:restore:{redemption_id}",
            source_type=SourceType.REFUND,
            source_ref=key,
            order_id=order_id,
            reverses_entry_id=redemption_id,
            allocations=[(lot, -n) for lot, n in parts],
            balance_after=state.balance + dead_total,
        )
        if dead:
            await ledger.write_entry(
                conn,
                member_id=member_id,
                kind=EntryKind.EXPIRE,
                amount=-dead_total,
                key=f"{key}:restore:{redemption_id}:expired",
                source_type=SourceType.REFUND,
                source_ref=key,
                order_id=order_id,
                allocations=dead,
                balance_after=state.balance,
            )
        returned += live_total
        forfeited += dead_total
    state = await ledger.settle_debt(conn, member_id, state, key=key)
    return Return(returned, forfeited, state)
