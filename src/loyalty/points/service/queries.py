"""Reading points: accounts, lots, history, and the finance view. Batch functions take many
member ids and answer in one query (for per-request loaders)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tortoise.expressions import Q

from loyalty import clock, db
from loyalty.points import sql
from loyalty.points.models import (
    EntryKind,
    PendingEarning,
    PendingStatus,
    PointsAccount,
    PointsAllocation,
    PointsEntry,
)
from loyalty.points.service.ledger import AccountState

EMPTY = AccountState(0, 0, 0)


async def accounts(member_ids: Sequence[int]) -> dict[int, AccountState]:
    """Each member's balance, pending and debt as of now, in two queries.

    ``points_account.balance`` is a cache kept by writes, and every write expires the
    member's due lots first (expire on touch, see :mod:`.ledger`). Between writes a lot can
    pass its expiry before the sweep reaches it: its remaining points are subtracted here, so
    the balance read is the one a redemption would see, whatever the sweep's progress.
    """
    ids = list(member_ids)
    if not ids:
        return {}
    conn = db.connection()
    rows = await sql.fetch(
        conn,
        "SELECT a.member_id, a.balance, a.pending, a.debt, COALESCE(("
        "SELECT SUM(e.remaining) FROM points_entry e WHERE e.member_id = a.member_id "
        "AND e.remaining > 0 AND e.expires_at < ?), 0) AS due "
        f"FROM points_account a WHERE a.member_id IN ({', '.join('?' * len(ids))})",
        _db_time(conn, clock.now()),
        *ids,
    )
    return {
        r["member_id"]: AccountState(max(0, r["balance"] - int(r["due"])), r["pending"], r["debt"])
        for r in rows
    }


def _db_time(conn: Any, moment: datetime) -> Any:
    """``moment`` as the backend stores a timestamp column (an ISO string on SQLite)."""
    return PointsEntry._meta.fields_map["expires_at"].to_db_value(moment, None)


async def get_account(*, member_id: int) -> AccountState:
    return (await accounts([member_id])).get(member_id, EMPTY)


async def open_lots(member_ids: Sequence[int]) -> dict[int, list[PointsEntry]]:
    """Each member's lots with points left and not past their expiry (whether or not the
    sweep has expired them yet), oldest expiry first (never-expiring last)."""
    rows = await PointsEntry.filter(member_id__in=list(member_ids), remaining__gt=0).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gte=clock.now())
    )
    grouped: dict[int, list[PointsEntry]] = defaultdict(list)
    for row in rows:
        grouped[row.member_id].append(row)  # type: ignore[attr-defined]
    for lots in grouped.values():
        lots.sort(
            key=lambda lot: (
                lot.expires_at is None,
                lot.expires_at.timestamp() if lot.expires_at else 0,
                lot.id,
            )
        )
    return grouped


def expiring_within(lots: Sequence[PointsEntry], days: int) -> int:
    """Points of ``lots`` that expire within ``days`` from now."""
    horizon = clock.now() + timedelta(days=days)
    return sum(
        int(lot.remaining or 0) for lot in lots if lot.expires_at and lot.expires_at <= horizon
    )


async def history_page(
    *, member_id: int, first: int, before_id: int | None = None
) -> tuple[list[PointsEntry], bool]:
    """The member's entries, newest first (keyset on id): ``(rows, has_next_page)``."""
    query = PointsEntry.filter(member_id=member_id)
    if before_id is not None:
        query = query.filter(id__lt=before_id)
    return _page(await query.order_by("-id").limit(first + 1), first)


async def first_history_pages(
    member_ids: Sequence[int], *, first: int
) -> dict[int, tuple[list[PointsEntry], bool]]:
    """:func:`history_page` without ``before_id`` for many members, in one query."""
    found = await db.first_rows_per_key(
        PointsEntry, key="member_id", keys=member_ids, order_by=("-id",), limit=first + 1
    )
    return {m: _page(found.get(m, []), first) for m in member_ids}


def _page(rows: list[PointsEntry], first: int) -> tuple[list[PointsEntry], bool]:
    return rows[:first], len(rows) > first


async def allocations(entry_ids: Sequence[int]) -> dict[int, list[PointsAllocation]]:
    rows = await PointsAllocation.filter(entry_id__in=list(entry_ids)).order_by("id")
    grouped: dict[int, list[PointsAllocation]] = defaultdict(list)
    for row in rows:
        grouped[row.entry_id].append(row)  # type: ignore[attr-defined]
    return grouped


async def entries(ids: Sequence[int]) -> dict[int, PointsEntry]:
    return {e.id: e for e in await PointsEntry.filter(id__in=list(ids))}


async def pending_for_orders(order_ids: Sequence[int]) -> dict[int, PendingEarning]:
    rows = await PendingEarning.filter(order_id__in=list(order_ids))
    return {r.order_id: r for r in rows}


async def points_for_orders(order_ids: Sequence[int]) -> dict[int, int]:
    """Active points earned per order (EARN entries, pending ones once activated)."""
    rows = await PointsEntry.filter(order_id__in=list(order_ids), kind=EntryKind.EARN).values_list(
        "order_id", "amount"
    )
    totals: dict[int, int] = defaultdict(int)
    for order_id, amount in rows:
        totals[order_id] += amount
    return totals


# --- finance ------------------------------------------------------------------------------


@dataclass
class MonthFlow:
    """Points moved in one business-zone month (all positive numbers)."""

    month: str
    issued: int = 0
    redeemed: int = 0
    expired: int = 0
    reversed: int = 0
    adjusted_down: int = 0


@dataclass
class Liability:
    """Outstanding points by expiry month, and the flows per month."""

    outstanding_total: int
    pending_total: int
    debt_total: int
    by_expiry_month: list[tuple[str | None, int]]
    flows: list[MonthFlow] = field(default_factory=list)


def _month(value: datetime) -> str:
    return value.astimezone(clock.business_zone()).strftime("%Y-%m")


async def liability(*, since: datetime | None = None, until: datetime | None = None) -> Liability:
    """Points liability: open lots by expiry month (``None``: never expires), pending and
    owed points, and per month of ``since``–``until``: points issued (earned, granted,
    adjusted up, returned), redeemed, expired (breakage), reversed and adjusted down.

    Lots past their expiry are not outstanding, like in the balances; they show as expired
    in the flows once their EXPIRE entries are written (a write touching the member, or the
    sweep)."""
    outstanding: dict[str | None, int] = defaultdict(int)
    for expires_at, remaining in (
        await PointsEntry.filter(remaining__gt=0)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gte=clock.now()))
        .values_list("expires_at", "remaining")
    ):
        outstanding[_month(expires_at) if expires_at else None] += remaining
    totals = await PointsAccount.all().values_list("pending", "debt")
    query = PointsEntry.all()
    if since is not None:
        query = query.filter(created_at__gte=since)
    if until is not None:
        query = query.filter(created_at__lt=until)
    flows: dict[str, MonthFlow] = {}
    for created_at, kind, amount in await query.values_list("created_at", "kind", "amount"):
        month = _month(created_at)
        flow = flows.setdefault(month, MonthFlow(month))
        kind = EntryKind(kind)
        if amount > 0:
            flow.issued += amount
        elif kind is EntryKind.REDEEM:
            flow.redeemed -= amount
        elif kind is EntryKind.EXPIRE:
            flow.expired -= amount
        elif kind in (EntryKind.REVERSE, EntryKind.SETTLE):
            flow.reversed -= amount
        elif kind is EntryKind.ADJUST:
            flow.adjusted_down -= amount
    never = outstanding.pop(None, 0)
    by_month: list[tuple[str | None, int]] = sorted(outstanding.items())  # type: ignore[arg-type]
    if never:
        by_month.append((None, never))
    return Liability(
        outstanding_total=sum(n for _m, n in by_month),
        pending_total=sum(p for p, _d in totals),
        debt_total=sum(d for _p, d in totals),
        by_expiry_month=by_month,
        flows=[flows[m] for m in sorted(flows)],
    )


async def pending_total(member_id: int) -> int:
    rows = await PendingEarning.filter(
        member_id=member_id, status=PendingStatus.PENDING
    ).values_list("amount", flat=True)
    return sum(rows)  # type: ignore[arg-type]
