"""Earning: points for orders (active or pending), grants from campaigns, pending activation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from loyalty import clock, db
from loyalty.errors import FieldErrors
from loyalty.events import service as events
from loyalty.jobs import JobQueue
from loyalty.members.errors import MemberNotActive
from loyalty.members.models import MemberStatus
from loyalty.points.errors import LedgerRace
from loyalty.points.models import EntryKind, PendingEarning, PendingStatus, SourceType
from loyalty.points.service import ledger
from loyalty.points.service.ledger import INT64_MAX, AccountState
from loyalty.points.service.program import get_program

log = structlog.get_logger(__name__)

RETRIES = 3


@dataclass(frozen=True)
class Movement:
    """A ledger change as its caller sees it (the same again on a replay)."""

    entry_id: int
    member_id: int
    amount: int
    balance: int
    replayed: bool = False


@dataclass(frozen=True)
class OrderGrant:
    earned: int
    pending: int
    state: AccountState


async def active_member_id(member_id: int) -> int:
    """The member (a merged one resolves to its survivor), which must be ACTIVE."""
    from loyalty.members import service as members

    member = await members.get(member_id=member_id)
    if member.status != MemberStatus.ACTIVE:
        raise MemberNotActive(f"member is {member.status.value.lower()}")
    return member.id


async def lock_active_member(conn: BaseDBAsyncClient, member_id: int) -> int:
    """Inside a transaction: lock the member first (the ledger's lock order), following a
    merge that committed since it was looked up to the survivor; returns the id points go
    to. Raises MemberNotActive unless that member is ACTIVE."""
    member = await ledger.lock_member(conn, member_id)
    if member.status != MemberStatus.ACTIVE:
        raise MemberNotActive(f"member is {member.status.value.lower()}")
    return member.id


async def grant_order_points(
    conn: BaseDBAsyncClient,
    *,
    member_id: int,
    order_id: int,
    amount: int,
    at: datetime,
    pending_days: int,
    expiry_months: int | None,
) -> OrderGrant:
    """Inside the order's transaction: ``amount`` points for ``order_id``, pending for
    ``pending_days`` or active at once (as a lot that pays any debt first). Once per order:
    the entry key is ``earn:order:<id>`` and pending rows are unique per order."""
    state = await ledger.lock_account(conn, member_id)
    if amount <= 0:
        return OrderGrant(0, 0, state)
    now = clock.now()
    if pending_days > 0:
        await PendingEarning.create(
            using_db=conn,
            member_id=member_id,
            order_id=order_id,
            amount=amount,
            original_amount=amount,
            activates_at=now + timedelta(days=pending_days),
            created_at=now,
        )
        state = await ledger.change_pending(conn, member_id, amount)
        return OrderGrant(0, amount, state)
    _entry, state = await ledger.add_lot(
        conn,
        member_id=member_id,
        kind=EntryKind.EARN,
        amount=amount,
        key=f"earn:order:{order_id}",
        source_type=SourceType.ORDER,
        source_ref=str(order_id),
        order_id=order_id,
        expires_at=ledger.expiry_for(now, expiry_months),
    )
    return OrderGrant(amount, 0, state)


@db.retry_conflicts
async def award(
    *,
    member_id: int,
    amount: int,
    idempotency_key: str,
    source_type: SourceType = SourceType.CAMPAIGN,
    source_ref: str | None = None,
    reason: str | None = None,
    expires_at: datetime | None = None,
    jobs: JobQueue | None = None,
) -> Movement:
    """Grant ``amount`` points as a new lot (campaign rewards, activities).

    Idempotent on ``idempotency_key``: the same grant again returns the first result; the key
    with another amount or member raises IdempotencyConflict. Default expiry per the program.
    """
    errors = FieldErrors()
    if not 0 < amount <= INT64_MAX:
        errors.add("amount", "must be a positive 64-bit integer", "OUT_OF_RANGE")
    if not 0 < len(idempotency_key) <= 160:
        errors.add("idempotencyKey", "1–160 characters", "INVALID")
    errors.raise_if_any()
    member_id = await active_member_id(member_id)
    key = f"award:{idempotency_key}"
    request_hash = ledger.fingerprint(
        {"member": member_id, "amount": amount, "source": source_type.value, "ref": source_ref}
    )
    replay = await ledger.check_replay(key, request_hash)
    if replay is not None:
        return _movement(replay, replayed=True)
    program = await get_program()
    expiry = expires_at or ledger.expiry_for(clock.now(), program.expiry_months)
    try:
        async with in_transaction() as conn:
            holder = await lock_active_member(conn, member_id)
            await ledger.lock_account(conn, holder)
            entry, _state = await ledger.add_lot(
                conn,
                member_id=holder,
                kind=EntryKind.EARN,
                amount=amount,
                key=key,
                request_hash=request_hash,
                source_type=source_type,
                source_ref=source_ref,
                reason=reason,
                expires_at=expiry,
            )
            event_id = await events.record(
                kind="points.earned",
                dedupe_key=key,
                member_id=holder,
                payload={"entry_id": entry.id, "amount": amount, "source": source_type.value},
                connection=conn,
            )
    except IntegrityError:
        replay = await ledger.check_replay(key, request_hash)
        if replay is None:
            raise
        return _movement(replay, replayed=True)
    if jobs is not None:
        events.publish_later(jobs, event_id)
    return _movement(entry)


def _movement(entry: ledger.PointsEntry, *, replayed: bool = False) -> Movement:
    return Movement(
        entry_id=entry.id,
        member_id=entry.member_id,  # type: ignore[attr-defined]
        amount=entry.amount,
        balance=int(entry.balance_after or 0),
        replayed=replayed,
    )


async def activate_pending(*, limit: int = 1000) -> list[int]:
    """Activate pending earnings whose return window has passed; returns the member ids.

    Each activation is its own transaction; a status change ``PENDING → ACTIVATED`` guarded
    by the current status makes a second run (or a concurrent worker) a no-op.
    """
    due = (
        await PendingEarning.filter(status=PendingStatus.PENDING, activates_at__lte=clock.now())
        .order_by("activates_at", "id")
        .limit(limit)
        .values_list("id", flat=True)
    )
    members: list[int] = []
    for pending_id in due:
        member_id = await _activate_one(int(pending_id))  # type: ignore[call-overload]
        if member_id is not None:
            members.append(member_id)
    return sorted(set(members))


@db.retry_conflicts
async def _activate_one(pending_id: int) -> int | None:
    program = await get_program()
    for attempt in range(RETRIES):
        try:
            async with in_transaction() as conn:
                row = await PendingEarning.get_or_none(id=pending_id).using_db(conn)
                if row is None or row.status != PendingStatus.PENDING:
                    return None
                # The member first (the ledger's lock order); a merged member's points go to
                # the survivor.
                member_id = (await ledger.lock_member(conn, row.member_id)).id  # type: ignore[attr-defined]
                # Re-read under the lock: a merge or a refund may have changed it meanwhile.
                row = await PendingEarning.get(id=pending_id).using_db(conn)
                holder: int = row.member_id  # type: ignore[attr-defined]
                for account in sorted({holder, member_id}):
                    await ledger.lock_account(conn, account)
                won = (
                    await PendingEarning.filter(
                        id=pending_id, status=PendingStatus.PENDING, amount=row.amount
                    )
                    .using_db(conn)
                    .update(
                        status=PendingStatus.ACTIVATED,
                        activated_at=clock.now(),
                        member_id=member_id,
                    )
                )
                if won != 1:
                    return None
                if row.amount > 0:
                    await ledger.change_pending(conn, holder, -row.amount)
                    await ledger.add_lot(
                        conn,
                        member_id=member_id,
                        kind=EntryKind.EARN,
                        amount=row.amount,
                        key=f"earn:order:{row.order_id}",
                        source_type=SourceType.ORDER,
                        source_ref=str(row.order_id),
                        order_id=row.order_id,
                        expires_at=ledger.expiry_for(clock.now(), program.expiry_months),
                    )
                return member_id
        except LedgerRace:
            log.warning("points.activate.retry", pending_id=pending_id, attempt=attempt)
    return None
