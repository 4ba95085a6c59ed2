"""Spending points and admin adjustments."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import structlog
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from loyalty import clock, db
from loyalty.audit import service as audit
from loyalty.auth.principal import Principal
from loyalty.errors import DomainError, FieldErrors
from loyalty.events import service as events
from loyalty.jobs import JobQueue
from loyalty.points.errors import InsufficientPoints, LedgerRace
from loyalty.points.models import EntryKind, PointsAccount, PointsEntry, SourceType
from loyalty.points.service import ledger
from loyalty.points.service.earn import (
    RETRIES,
    Movement,
    _movement,
    active_member_id,
    lock_active_member,
)
from loyalty.points.service.ledger import INT64_MAX
from loyalty.points.service.program import get_program

log = structlog.get_logger(__name__)

MAX_KEY = 128


def _check_key(errors: FieldErrors, key: str) -> None:
    if not 0 < len(key.strip()) <= MAX_KEY:
        errors.add("idempotencyKey", f"1–{MAX_KEY} characters", "INVALID")


@db.retry_conflicts
async def redeem(
    *,
    member_id: int,
    amount: int,
    idempotency_key: str,
    order_channel: str | None = None,
    order_external_id: str | None = None,
    actor: str | None = None,
    jobs: JobQueue | None = None,
) -> Movement:
    """Spend ``amount`` points, drawn from lots oldest expiry first.

    Idempotent on (``member_id`` as given, ``idempotency_key``): a replay returns the first
    result, also after that member was merged into another; the key with another amount or
    order reference raises IdempotencyConflict. Raises
    :class:`InsufficientPoints` (nothing written) when the balance does not cover it, and
    ValidationError, MemberNotFound, MemberNotActive.
    """
    errors = FieldErrors()
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount <= INT64_MAX:
        errors.add("amount", "must be a positive 64-bit integer", "OUT_OF_RANGE")
    _check_key(errors, idempotency_key)
    if (order_channel is None) != (order_external_id is None):
        errors.add("orderReference", "give both channel and external id", "INVALID")
    errors.raise_if_any()
    # The key belongs to the member the caller named: a retry after that member was merged
    # finds its first attempt (the entry moved to the survivor with its key unchanged).
    key = f"redeem:{member_id}:{idempotency_key.strip()}"
    member_id = await active_member_id(member_id)
    request_hash = ledger.fingerprint(
        {"amount": amount, "channel": order_channel, "order": order_external_id}
    )

    async def work(conn: BaseDBAsyncClient) -> tuple[PointsEntry, uuid.UUID]:
        holder = await lock_active_member(conn, member_id)
        state = await ledger.debit(conn, holder, amount)
        if state is None:
            account = await PointsAccount.get_or_none(member_id=holder).using_db(conn)
            raise InsufficientPoints(balance=account.balance if account else 0, requested=amount)
        taken = await ledger.draw(conn, holder, amount)
        entry = await ledger.write_entry(
            conn,
            member_id=holder,
            kind=EntryKind.REDEEM,
            amount=-amount,
            key=key,
            request_hash=request_hash,
            source_type=SourceType.REDEMPTION,
            source_ref=idempotency_key.strip(),
            order_channel=order_channel,
            order_external_id=order_external_id,
            actor=actor,
            allocations=taken,
            balance_after=state.balance,
        )
        return entry, await _event(conn, "points.redeemed", key, holder, entry)

    return await _idempotent(key, request_hash, work, jobs)


@db.retry_conflicts
async def adjust(
    *,
    actor: Principal,
    member_id: int,
    amount: int,
    reason: str,
    idempotency_key: str,
    jobs: JobQueue | None = None,
) -> Movement:
    """Admin correction: a positive ``amount`` is a new lot (default expiry, pays debt first),
    a negative one is taken from lots oldest expiry first and never below zero
    (:class:`InsufficientPoints`). ``reason`` is required. Idempotent like :func:`redeem`."""
    errors = FieldErrors()
    if not -INT64_MAX <= amount <= INT64_MAX or amount == 0:
        errors.add("amount", "a non-zero 64-bit integer", "OUT_OF_RANGE")
    reason = " ".join((reason or "").split())
    if not reason:
        errors.add("reason", "a reason is required", "REQUIRED")
    elif len(reason) > 500:
        errors.add("reason", "at most 500 characters", "TOO_LONG")
    _check_key(errors, idempotency_key)
    errors.raise_if_any()
    key = f"adjust:{member_id}:{idempotency_key.strip()}"  # the named member, as in redeem
    member_id = await active_member_id(member_id)
    request_hash = ledger.fingerprint({"amount": amount, "reason": reason})
    program = await get_program()

    async def work(conn: BaseDBAsyncClient) -> tuple[PointsEntry, uuid.UUID]:
        holder = await lock_active_member(conn, member_id)
        if amount > 0:
            await ledger.lock_account(conn, holder)
            entry, _state = await ledger.add_lot(
                conn,
                member_id=holder,
                kind=EntryKind.ADJUST,
                amount=amount,
                key=key,
                request_hash=request_hash,
                source_type=SourceType.ADMIN,
                source_ref=idempotency_key.strip(),
                reason=reason,
                actor=actor.subject,
                expires_at=ledger.expiry_for(clock.now(), program.expiry_months),
            )
        else:
            state = await ledger.debit(conn, holder, -amount)
            if state is None:
                account = await PointsAccount.get_or_none(member_id=holder).using_db(conn)
                raise InsufficientPoints(
                    balance=account.balance if account else 0, requested=-amount
                )
            taken = await ledger.draw(conn, holder, -amount)
            entry = await ledger.write_entry(
                conn,
                member_id=holder,
                kind=EntryKind.ADJUST,
                amount=amount,
                key=key,
                request_hash=request_hash,
                source_type=SourceType.ADMIN,
                source_ref=idempotency_key.strip(),
                reason=reason,
                actor=actor.subject,
                allocations=taken,
                balance_after=state.balance,
            )
        await audit.record(
            actor=actor,
            action="points.adjust",
            target_type="Member",
            target_id=holder,
            details={"entry_id": entry.id, "amount": amount},
            connection=conn,
        )
        return entry, await _event(conn, "points.adjusted", key, holder, entry)

    return await _idempotent(key, request_hash, work, jobs)


async def _event(
    conn: BaseDBAsyncClient, kind: str, key: str, member_id: int, entry: PointsEntry
) -> uuid.UUID:
    return await events.record(
        kind=kind,
        dedupe_key=key,
        member_id=member_id,
        payload={"entry_id": entry.id, "amount": entry.amount},
        connection=conn,
    )


async def _idempotent(
    key: str,
    request_hash: str,
    work: Callable[[BaseDBAsyncClient], Awaitable[tuple[PointsEntry, uuid.UUID]]],
    jobs: JobQueue | None,
) -> Movement:
    """Run ``work`` in its own transaction unless ``key`` was already used.

    A concurrent twin answers the winner's result whether it loses the unique key or is
    refused first: at the exact balance the twin waits on the account row (PostgreSQL) or its
    turn (SQLite), then finds the points spent by the request it repeats. Any refusal is
    therefore checked against the key after the rollback before it is raised."""
    replay = await ledger.check_replay(key, request_hash)
    if replay is not None:
        return _movement(replay, replayed=True)
    for attempt in range(RETRIES):
        try:
            async with in_transaction() as conn:
                entry, event_id = await work(conn)
        except (IntegrityError, DomainError):
            replay = await ledger.check_replay(key, request_hash)
            if replay is None:
                raise
            return _movement(replay, replayed=True)
        except LedgerRace:
            log.warning("points.ledger.retry", key=key, attempt=attempt)
            continue
        if jobs is not None:
            events.publish_later(jobs, event_id)
        return _movement(entry)
    raise LedgerRace(f"gave up after {RETRIES} attempts")
