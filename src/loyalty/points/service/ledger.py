"""Ledger primitives used inside a caller's transaction (``conn``).

Every change of an account or a lot is one conditional UPDATE whose affected rows are
checked: ``balance = balance - n WHERE … AND balance >= n``. On PostgreSQL the first UPDATE of
the account row also locks it until commit, so work on one member's points is serialised; on
SQLite transactions are serialised anyway. The CHECK constraints are the last line of defence.

Expiry is true at every moment, whatever the hourly sweep has reached. A lot whose
``expires_at`` is past (``expires_at < clock.now()``) is never drawn: :func:`draw` skips it.
Writes expire on touch: :func:`lock_account` and :func:`debit` first write the EXPIRE entries
of the member's due lots (:func:`expire_due_lots`) in the caller's transaction, so the balance
a write checks, returns and stores in ``points_account`` never counts them. Reads do not write:
``queries.accounts`` subtracts due lots not yet expired from the cached balance.

Lock order. Every transaction that writes a member's points, orders or claims takes its row
locks in one order, so two of them can wait on each other but never in a circle (PostgreSQL
would abort one as a deadlock):

1. the member row (:func:`lock_member`; a merge locks its two members in id order),
2. the points account (:func:`lock_account`; a merge locks both accounts in id order),
3. the order row (a refund's ``UPDATE customer_order``; a merge, the merged member's orders),
4. lots, allocations, pending earnings, category stats, tier rows, benefit counters and claims.

A lock taken earlier in the list is not requested after a later one. Holding the member
lock first also means a merge and a write for the same member run one after the other: the
write either lands before the merge (and moves with it) or finds the member MERGED and
follows ``merged_into`` to the survivor. The rare waits left outside this order (a refund
of a guest order attached while it waited; a write following a merge while the survivor is
itself being merged) and serialization failures are retried by
:func:`loyalty.db.retry_conflicts` around the service that owns the transaction.
"""

from __future__ import annotations

import hashlib
from calendar import monthrange
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q

from loyalty import clock
from loyalty.members.errors import MemberNotFound
from loyalty.members.models import Member, MemberStatus
from loyalty.points import sql
from loyalty.points.errors import IdempotencyConflict, LedgerRace
from loyalty.points.models import EntryKind, PointsAllocation, PointsEntry, SourceType

INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class AccountState:
    """The account row as one statement left it."""

    balance: int
    pending: int
    debt: int


def fingerprint(payload: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of ``payload`` (sorted keys): the idempotency hash."""
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


async def check_replay(key: str, request_hash: str) -> PointsEntry | None:
    """The entry already written under ``key`` with the same request, or None if none.

    Raises :class:`IdempotencyConflict` when ``key`` was used for a different request.
    """
    entry = await PointsEntry.get_or_none(idempotency_key=key)
    if entry is None:
        return None
    if entry.request_hash != request_hash:
        raise IdempotencyConflict("idempotency key already used for a different request")
    return entry


def expiry_for(earned_at: datetime, months: int | None) -> datetime | None:
    """End of the month ``months`` after ``earned_at``, in the business time zone (UTC stored).

    ``None`` months: never expires. 12 months after 2024-03-15 is 2025-03-31 23:59:59 local.
    """
    if months is None:
        return None
    zone = clock.business_zone()
    local = earned_at.astimezone(zone)
    index = local.year * 12 + (local.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    last = monthrange(year, month)[1]
    return datetime(year, month, last, 23, 59, 59, tzinfo=zone).astimezone(UTC)


# --- the member row -----------------------------------------------------------------------

MAX_MERGE_HOPS = 16


async def lock_member(conn: BaseDBAsyncClient, member_id: int) -> Member:
    """Lock the member's row for this transaction and follow merges to the survivor (locking
    each member on the way); returns the member the chain ends at, whatever its status.

    On PostgreSQL this is ``SELECT … FOR NO KEY UPDATE``: it waits for a merge of the member
    to commit, and then reads it MERGED. SQLite runs one transaction at a time. Raises
    :class:`MemberNotFound`.
    """
    member = await _locked(conn, member_id)
    hops = 0
    while member is not None and member.status is MemberStatus.MERGED and hops < MAX_MERGE_HOPS:
        target = member.merged_into_id  # type: ignore[attr-defined]
        if target is None:
            break
        member = await _locked(conn, target)
        hops += 1
    if member is None:
        raise MemberNotFound(member_id)
    return member


async def _locked(conn: BaseDBAsyncClient, member_id: int) -> Member | None:
    return await Member.filter(id=member_id).select_for_update(no_key=True).using_db(conn).first()


# --- the account row ----------------------------------------------------------------------

_RETURNING = " RETURNING balance, pending, debt"


def _state(rows: list[dict[str, Any]]) -> AccountState | None:
    if not rows:
        return None
    row = rows[0]
    return AccountState(int(row["balance"]), int(row["pending"]), int(row["debt"]))


async def lock_account(conn: BaseDBAsyncClient, member_id: int) -> AccountState:
    """Create the account if needed, lock its row (PostgreSQL) for this transaction and
    expire the member's due lots (:func:`expire_due_lots`): the state returned never counts
    points past their expiry.

    Lock the member first (:func:`lock_member`): see the lock order above."""
    state = await _lock(conn, member_id)
    expired = await _expire(conn, member_id, await _due_lots(conn, member_id, clock.now()))
    return expired or state


async def _lock(conn: BaseDBAsyncClient, member_id: int) -> AccountState:
    query = "UPDATE points_account SET balance = balance WHERE member_id = ?" + _RETURNING
    state = _state(await sql.fetch(conn, query, member_id))
    if state is not None:
        return state
    await sql.execute(
        conn,
        "INSERT INTO points_account (member_id, balance, pending, debt) VALUES (?, 0, 0, 0) "
        "ON CONFLICT (member_id) DO NOTHING",
        member_id,
    )
    state = _state(await sql.fetch(conn, query, member_id))
    if state is None:  # pragma: no cover - the insert above guarantees the row
        raise LedgerRace("account row missing")
    return state


async def debit(conn: BaseDBAsyncClient, member_id: int, amount: int) -> AccountState | None:
    """``balance -= amount`` if the balance covers it; None (nothing debited) otherwise.

    The member's due lots are expired first (:func:`expire_due_lots`), so points past their
    expiry never cover a debit; those EXPIRE entries stay in the caller's transaction (a
    caller refusing the request rolls them back with it).
    """
    await expire_due_lots(conn, member_id)
    return await _debit(conn, member_id, amount)


async def _debit(conn: BaseDBAsyncClient, member_id: int, amount: int) -> AccountState | None:
    return _state(
        await sql.fetch(
            conn,
            "UPDATE points_account SET balance = balance - ? "
            "WHERE member_id = ? AND balance >= ?" + _RETURNING,
            amount,
            member_id,
            amount,
        )
    )


async def _increase(
    conn: BaseDBAsyncClient, column: str, member_id: int, amount: int
) -> AccountState:
    """``column += amount`` on the member's account row (which must exist)."""
    state = _state(
        await sql.fetch(
            conn,
            f"UPDATE points_account SET {column} = {column} + ? WHERE member_id = ?" + _RETURNING,
            amount,
            member_id,
        )
    )
    if state is None:
        raise LedgerRace("account row missing")
    return state


async def credit(conn: BaseDBAsyncClient, member_id: int, amount: int) -> AccountState:
    return await _increase(conn, "balance", member_id, amount)


async def add_debt(conn: BaseDBAsyncClient, member_id: int, amount: int) -> AccountState:
    return await _increase(conn, "debt", member_id, amount)


async def pay_debt(conn: BaseDBAsyncClient, member_id: int, amount: int) -> AccountState:
    """``balance -= amount, debt -= amount`` when both cover it."""
    state = _state(
        await sql.fetch(
            conn,
            "UPDATE points_account SET balance = balance - ?, debt = debt - ? "
            "WHERE member_id = ? AND balance >= ? AND debt >= ?" + _RETURNING,
            amount,
            amount,
            member_id,
            amount,
            amount,
        )
    )
    if state is None:
        raise LedgerRace("debt settlement found less balance or debt than it read")
    return state


async def change_pending(conn: BaseDBAsyncClient, member_id: int, delta: int) -> AccountState:
    """``pending += delta`` (a negative delta only if pending covers it)."""
    state = _state(
        await sql.fetch(
            conn,
            "UPDATE points_account SET pending = pending + ? "
            "WHERE member_id = ? AND pending + ? >= 0" + _RETURNING,
            delta,
            member_id,
            delta,
        )
    )
    if state is None:
        raise LedgerRace("pending points found less than it read")
    return state


# --- lots ---------------------------------------------------------------------------------


async def open_lots(
    conn: BaseDBAsyncClient, member_id: int, *, at: datetime | None = None
) -> list[PointsEntry]:
    """The member's lots with points left and not past their expiry at ``at`` (default now),
    oldest expiry first (never-expiring last)."""
    at = at or clock.now()
    lots = (
        await PointsEntry.filter(member_id=member_id, remaining__gt=0)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gte=at))
        .using_db(conn)
    )
    return sorted(lots, key=_sort_key)


async def _due_lots(conn: BaseDBAsyncClient, member_id: int, at: datetime) -> list[PointsEntry]:
    """The member's lots past their expiry at ``at`` with points left, oldest expiry first."""
    lots = await PointsEntry.filter(
        member_id=member_id, remaining__gt=0, expires_at__lt=at
    ).using_db(conn)
    return sorted(lots, key=_sort_key)


async def expire_due_lots(conn: BaseDBAsyncClient, member_id: int) -> int:
    """Expire what is left of the member's lots past their expiry, in the caller's
    transaction: one EXPIRE entry per lot under the key ``expire:lot:<id>`` (so a lot expires
    once, whether a write touching the member or the sweep gets there first). Returns the
    points expired.

    Looks without a lock first (nothing due is the common case) and locks the account only
    when something is due, then reads the due lots again under the lock: a concurrent writer
    may have expired them meanwhile. Raises :class:`LedgerRace` when the ledger disagrees
    with itself (the caller retries).
    """
    now = clock.now()
    if not await _due_lots(conn, member_id, now):
        return 0
    before = await _lock(conn, member_id)
    after = await _expire(conn, member_id, await _due_lots(conn, member_id, now))
    return before.balance - after.balance if after else 0


async def _expire(
    conn: BaseDBAsyncClient, member_id: int, lots: list[PointsEntry]
) -> AccountState | None:
    """Expire ``lots`` (due, the account locked); the account state after, None if no lots."""
    state: AccountState | None = None
    for lot in lots:
        n = int(lot.remaining or 0)
        state = await _debit(conn, member_id, n)
        if state is None:
            raise LedgerRace(f"balance below the remaining points of lot {lot.id}")
        changed = await sql.execute(
            conn,
            "UPDATE points_entry SET remaining = remaining - ? WHERE id = ? AND remaining >= ?",
            n,
            lot.id,
            n,
        )
        if changed != 1:
            raise LedgerRace(f"lot {lot.id} changed under us")
        await write_entry(
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
    return state


def _sort_key(lot: PointsEntry) -> tuple[int, float, int]:
    # Oldest expiry first; lots that never expire last.
    if lot.expires_at is None:
        return (1, 0.0, lot.id)
    return (0, lot.expires_at.timestamp(), lot.id)


async def draw(
    conn: BaseDBAsyncClient,
    member_id: int,
    amount: int,
    *,
    prefer: list[int] | None = None,
) -> list[tuple[int, int]]:
    """Take ``amount`` from the member's lots: the ``prefer`` lots first, then oldest expiry
    first. Returns ``[(lot_id, taken)]``. Each lot decrement is guarded (``remaining >= n``).

    Lots past their expiry are never drawn. The caller expired the due ones when it locked or
    debited the account; a lot whose expiry fell between that and now leaves the lots short of
    the balance, which raises :class:`LedgerRace` (the caller retries and expires it).
    """
    if amount <= 0:
        return []
    lots = await open_lots(conn, member_id)
    if prefer:
        rank = {lot_id: i for i, lot_id in enumerate(prefer)}
        lots.sort(key=lambda lot: (rank.get(lot.id, len(rank)), *_sort_key(lot)))
    taken: list[tuple[int, int]] = []
    left = amount
    for lot in lots:
        if left == 0:
            break
        take = min(left, int(lot.remaining or 0))
        if take <= 0:
            continue
        changed = await sql.execute(
            conn,
            "UPDATE points_entry SET remaining = remaining - ? WHERE id = ? AND remaining >= ?",
            take,
            lot.id,
            take,
        )
        if changed != 1:
            raise LedgerRace(f"lot {lot.id} changed under us")
        taken.append((lot.id, take))
        left -= take
    if left:
        raise LedgerRace(f"lots hold {amount - left} points, the balance said {amount}")
    return taken


async def give_back(conn: BaseDBAsyncClient, lot_id: int, amount: int) -> None:
    """``remaining += amount`` on one lot (a returned redemption)."""
    changed = await sql.execute(
        conn, "UPDATE points_entry SET remaining = remaining + ? WHERE id = ?", amount, lot_id
    )
    if changed != 1:
        raise LedgerRace(f"lot {lot_id} missing")


# --- entries ------------------------------------------------------------------------------


async def write_entry(
    conn: BaseDBAsyncClient,
    *,
    member_id: int,
    kind: EntryKind,
    amount: int,
    key: str,
    source_type: SourceType,
    request_hash: str | None = None,
    debt_delta: int = 0,
    allocations: list[tuple[int, int]] | None = None,
    lot_expires_at: datetime | None = None,
    is_lot: bool = False,
    balance_after: int | None = None,
    **extra: Any,
) -> PointsEntry:
    """Insert one entry (a lot when ``is_lot``) and its allocations ``[(lot_id, amount)]``."""
    entry = await PointsEntry.create(
        using_db=conn,
        member_id=member_id,
        kind=kind,
        amount=amount,
        debt_delta=debt_delta,
        idempotency_key=key,
        request_hash=request_hash,
        source_type=source_type,
        remaining=amount if is_lot else None,
        expires_at=lot_expires_at if is_lot else None,
        balance_after=balance_after,
        created_at=clock.now(),
        **extra,
    )
    if allocations:
        await PointsAllocation.bulk_create(
            [
                PointsAllocation(member_id=member_id, entry_id=entry.id, lot_id=lot, amount=n)
                for lot, n in allocations
            ],
            using_db=conn,
        )
    return entry


async def add_lot(
    conn: BaseDBAsyncClient,
    *,
    member_id: int,
    kind: EntryKind,
    amount: int,
    key: str,
    source_type: SourceType,
    expires_at: datetime | None,
    request_hash: str | None = None,
    **extra: Any,
) -> tuple[PointsEntry, AccountState]:
    """Credit ``amount`` as a new lot, then let it pay any debt first. The account must be
    locked by the caller (:func:`lock_account`)."""
    state = await credit(conn, member_id, amount)
    entry = await write_entry(
        conn,
        member_id=member_id,
        kind=kind,
        amount=amount,
        key=key,
        source_type=source_type,
        request_hash=request_hash,
        is_lot=True,
        lot_expires_at=expires_at,
        balance_after=state.balance,
        **extra,
    )
    state = await settle_debt(conn, member_id, state, key=key)
    if state.balance != entry.balance_after:
        entry.balance_after = state.balance
        await PointsEntry.filter(id=entry.id).using_db(conn).update(balance_after=state.balance)
    return entry, state


async def settle_debt(
    conn: BaseDBAsyncClient, member_id: int, state: AccountState, *, key: str
) -> AccountState:
    """If the member owes points, pay as much as the balance allows (a SETTLE entry)."""
    amount = min(state.debt, state.balance)
    if amount <= 0:
        return state
    state = await pay_debt(conn, member_id, amount)
    taken = await draw(conn, member_id, amount)
    await write_entry(
        conn,
        member_id=member_id,
        kind=EntryKind.SETTLE,
        amount=-amount,
        debt_delta=-amount,
        key=f"{key}:settle",
        source_type=SourceType.SYSTEM,
        allocations=taken,
        balance_after=state.balance,
    )
    return state
