"""Writing, claiming, delivering and marking outbox rows, on PostgreSQL and SQLite alike.

Delivery is at least once with no duplicate a receiver cannot recognise:

- :func:`add` writes the row in the caller's transaction.
- :func:`claim` takes due rows with one conditional ``UPDATE … RETURNING`` (``FOR UPDATE SKIP
  LOCKED`` on PostgreSQL; SQLite runs one writer at a time), so two workers, or the publisher
  and the reconciler, never hold one row at once. A claim is a lease: the attempt counts when
  it is taken, and a claim not finished by ``claimed_until`` is returned by
  :func:`reclaim_expired`.
- :func:`deliver` sends each claimed row through its kind's sender
  (:mod:`loyalty.outbox.senders`), which passes the dedupe key on. A transient failure backs
  off exponentially with jitter; after ``max_attempts`` the row is DEAD with its last error.
"""

from __future__ import annotations

import os
import random
import socket
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.functions import Count

from loyalty import clock, db, errors, observability
from loyalty.outbox.models import DUE_STATUSES, OutboxMessage, OutboxStatus
from loyalty.outbox.senders import Delivery, Suppressed, Undeliverable, sender_for
from loyalty.points import sql
from loyalty.settings import Settings, get_settings

# Longest error text kept on a row.
ERROR_CHARS = 2_000
# Longest kind of a row.
KIND_CHARS = 64


@dataclass(frozen=True, slots=True)
class Policy:
    """How deliveries are retried and how long a claim holds."""

    max_attempts: int = 8
    backoff_seconds: float = 5.0
    backoff_max_seconds: float = 3_600.0
    lease_seconds: float = 60.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            max_attempts=settings.outbox_max_attempts,
            backoff_seconds=settings.outbox_backoff_seconds,
            backoff_max_seconds=settings.outbox_backoff_max_seconds,
            lease_seconds=settings.outbox_lease_seconds,
        )


def default_policy() -> Policy:
    return Policy.from_settings(get_settings())


def backoff(attempts: int, policy: Policy, rng: random.Random | None = None) -> timedelta:
    """Wait before the attempt after ``attempts`` failed ones: doubling from
    ``backoff_seconds`` up to ``backoff_max_seconds``, with jitter over its upper half (so it
    never shrinks below half the nominal wait and retries of many rows spread out)."""
    nominal = min(policy.backoff_max_seconds, policy.backoff_seconds * 2 ** max(attempts - 1, 0))
    jitter = (rng or random).uniform(0, nominal / 2)
    return timedelta(seconds=nominal / 2 + jitter)


def claimant() -> str:
    """A claim token: host, process and a random part (two loops of one process differ)."""
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


async def add(
    *,
    kind: str,
    dedupe_key: str,
    payload: dict[str, Any],
    member_id: int | None = None,
    row_id: uuid.UUID | None = None,
    connection: BaseDBAsyncClient | None = None,
) -> uuid.UUID:
    """Insert a PENDING row, due now, unless ``dedupe_key`` exists; returns the row's id.

    Runs in the caller's transaction (pass its connection)."""
    row, _created = await add_row(
        kind=kind,
        dedupe_key=dedupe_key,
        payload=payload,
        member_id=member_id,
        row_id=row_id,
        connection=connection,
    )
    return row.id


async def add_row(
    *,
    kind: str,
    dedupe_key: str,
    payload: dict[str, Any],
    member_id: int | None = None,
    row_id: uuid.UUID | None = None,
    connection: BaseDBAsyncClient | None = None,
) -> tuple[OutboxMessage, bool]:
    """:func:`add`, returning the row and whether this call created it (False: the dedupe
    key existed). ``row_id`` sets the id (default: a random one)."""
    existing = await OutboxMessage.filter(dedupe_key=dedupe_key).using_db(connection).first()
    if existing is not None:
        return existing, False
    now = clock.now()
    row = await OutboxMessage.create(
        id=row_id or uuid.uuid4(),
        kind=kind,
        dedupe_key=dedupe_key,
        member_id=member_id,
        payload=payload,
        status=OutboxStatus.PENDING,
        next_attempt_at=now,
        created_at=now,
        using_db=connection,
    )
    return row, True


def _id_param(conn: BaseDBAsyncClient, value: uuid.UUID) -> Any:
    # SQLite keeps UUIDs as text, PostgreSQL as uuid.
    return value if sql.dialect(conn) == "postgres" else str(value)


def _due_list() -> str:
    return ", ".join(f"'{status.value}'" for status in DUE_STATUSES)


async def claim(
    *,
    limit: int,
    token: str,
    policy: Policy | None = None,
    ids: list[uuid.UUID] | None = None,
    after: uuid.UUID | None = None,
    paged: bool = False,
) -> list[Delivery]:
    """Claim up to ``limit`` due rows for ``token`` with one conditional statement.

    ``ids`` limits the claim to those rows (the publisher's fast path). ``paged`` takes rows
    in id order, after ``after`` when given (keyset pages); otherwise the earliest due come
    first."""
    policy = policy or default_policy()
    conn = db.connection()
    now = clock.now()
    inner = f"SELECT id FROM outbox WHERE status IN ({_due_list()}) AND next_attempt_at <= ?"
    params: list[Any] = [token, now + timedelta(seconds=policy.lease_seconds), now]
    if ids is not None:
        if not ids:
            return []
        inner += f" AND id IN ({', '.join('?' for _ in ids)})"
        params.extend(_id_param(conn, i) for i in ids)
    if after is not None:
        inner += " AND id > ?"
        params.append(_id_param(conn, after))
    inner += " ORDER BY id" if paged else " ORDER BY next_attempt_at, id"
    inner += " LIMIT ?"
    params.append(limit)
    if sql.dialect(conn) == "postgres":
        inner += " FOR UPDATE SKIP LOCKED"
    rows = await sql.fetch(
        conn,
        "UPDATE outbox SET status = 'IN_FLIGHT', claimed_by = ?, claimed_until = ?, "
        f"attempts = attempts + 1 WHERE id IN ({inner}) AND status IN ({_due_list()}) "
        "RETURNING id",
        *params,
    )
    if not rows:
        return []
    claimed = [uuid.UUID(str(row["id"])) for row in rows]
    found = await OutboxMessage.filter(id__in=claimed, claimed_by=token).values(
        "id", "kind", "dedupe_key", "member_id", "payload", "created_at", "attempts"
    )
    return sorted(
        (
            Delivery(
                id=uuid.UUID(str(r["id"])),
                kind=r["kind"],
                dedupe_key=r["dedupe_key"],
                member_id=r["member_id"],
                payload=r["payload"],
                created_at=r["created_at"],
                attempt=r["attempts"],
            )
            for r in found
        ),
        key=lambda d: str(d.id),
    )


@dataclass
class DeliveryReport:
    """What one :func:`deliver` call did; ``last_id`` is the greatest id it claimed."""

    claimed: int = 0
    sent: int = 0
    failed: int = 0
    dead: int = 0
    suppressed: int = 0
    last_id: uuid.UUID | None = None
    errors: list[str] = field(default_factory=list)

    def add(self, other: DeliveryReport) -> None:
        self.claimed += other.claimed
        self.sent += other.sent
        self.failed += other.failed
        self.dead += other.dead
        self.suppressed += other.suppressed
        self.errors.extend(other.errors)
        self.last_id = other.last_id or self.last_id


def _error_text(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text[:ERROR_CHARS]


async def deliver(
    *,
    redis: Any,
    limit: int = 100,
    policy: Policy | None = None,
    ids: list[uuid.UUID] | None = None,
    after: uuid.UUID | None = None,
    paged: bool = False,
) -> DeliveryReport:
    """Claim due rows (see :func:`claim`), send each through its sender and mark the outcome.

    Marks are guarded by the claim token: a row whose lease expired and was claimed again
    elsewhere is left to its new holder."""
    policy = policy or default_policy()
    token = claimant()
    claimed = await claim(
        limit=limit, token=token, policy=policy, ids=ids, after=after, paged=paged
    )
    report = DeliveryReport(claimed=len(claimed))
    if claimed:
        report.last_id = max(claimed, key=lambda d: str(d.id)).id
    sent: dict[str, list[uuid.UUID]] = {}  # by kind
    for delivery in claimed:
        try:
            await sender_for(delivery.kind)(delivery, redis=redis)
        except Suppressed as exc:
            report.suppressed += await _finish(
                delivery, token, status=OutboxStatus.SUPPRESSED, suppressed_reason=str(exc)[:191]
            )
        except Undeliverable as exc:
            report.errors.append(_error_text(exc))
            report.dead += await _finish(
                delivery, token, status=OutboxStatus.DEAD, last_error=_error_text(exc)
            )
        except Exception as exc:  # transient: retried with backoff until attempts run out
            report.errors.append(_error_text(exc))
            if delivery.attempt >= policy.max_attempts:
                report.dead += await _finish(
                    delivery, token, status=OutboxStatus.DEAD, last_error=_error_text(exc)
                )
            else:
                report.failed += await _finish(
                    delivery,
                    token,
                    status=OutboxStatus.FAILED,
                    last_error=_error_text(exc),
                    next_attempt_at=clock.now() + backoff(delivery.attempt, policy),
                )
        else:
            sent.setdefault(delivery.kind, []).append(delivery.id)
    for kind, sent_ids in sent.items():
        marked = await OutboxMessage.filter(
            id__in=sent_ids, claimed_by=token, status=OutboxStatus.IN_FLIGHT
        ).update(
            status=OutboxStatus.SENT,
            sent_at=clock.now(),
            last_error=None,
            claimed_by=None,
            claimed_until=None,
        )
        report.sent += marked
        if marked:
            observability.OUTBOX_DELIVERED.labels(kind=kind).inc(marked)
    return report


_OUTCOME_COUNTERS = {
    OutboxStatus.FAILED: observability.OUTBOX_FAILED,
    OutboxStatus.DEAD: observability.OUTBOX_DEAD,
}


async def _finish(delivery: Delivery, token: str, **changes: Any) -> int:
    marked = await OutboxMessage.filter(
        id=delivery.id, claimed_by=token, status=OutboxStatus.IN_FLIGHT
    ).update(claimed_by=None, claimed_until=None, **changes)
    counter = _OUTCOME_COUNTERS.get(changes["status"])
    if marked and counter is not None:
        counter.labels(kind=delivery.kind).inc(marked)
    return marked


async def reclaim_expired(*, policy: Policy | None = None) -> int:
    """Return claims whose lease ran out to PENDING, due now (DEAD once their attempts are
    used up: a row that keeps killing its sender stops); returns how many."""
    policy = policy or default_policy()
    now = clock.now()
    rows = await sql.fetch(
        db.connection(),
        "UPDATE outbox SET "
        "status = CASE WHEN attempts >= ? THEN 'DEAD' ELSE 'PENDING' END, "
        "last_error = CASE WHEN attempts >= ? THEN 'claim expired before it finished' "
        "ELSE last_error END, "
        "next_attempt_at = ?, claimed_by = NULL, claimed_until = NULL "
        "WHERE status = 'IN_FLIGHT' AND claimed_until < ? RETURNING kind, status",
        policy.max_attempts,
        policy.max_attempts,
        now,
        now,
    )
    for row in rows:
        if row["status"] == OutboxStatus.DEAD.value:
            observability.OUTBOX_DEAD.labels(kind=row["kind"]).inc()
    return len(rows)


async def deliver_all_due(
    *, redis: Any, page_size: int = 500, policy: Policy | None = None
) -> DeliveryReport:
    """The reconciler's pass: reclaim expired claims, then deliver every due row, one page
    of ``page_size`` at a time in id order (keyset: each page starts after the last id)."""
    policy = policy or default_policy()
    await reclaim_expired(policy=policy)
    total = DeliveryReport()
    after: uuid.UUID | None = None
    while True:
        page = await deliver(redis=redis, limit=page_size, policy=policy, after=after, paged=True)
        total.add(page)
        if page.claimed == 0:
            return total
        after = page.last_id


async def retry_dead(*, kind: str | None = None) -> int:
    """Put DEAD rows (of ``kind``, or all) back to PENDING with fresh attempts, due now;
    returns how many. Raises :class:`~loyalty.errors.ValidationError` for a blank kind or
    one longer than a kind can be."""
    if kind is not None and not 0 < len(kind) <= KIND_CHARS:
        raise errors.ValidationError(
            errors.FieldError("kind", f"1 to {KIND_CHARS} characters, or omit it.", "INVALID")
        )
    query = OutboxMessage.filter(status=OutboxStatus.DEAD)
    if kind is not None:
        query = query.filter(kind=kind)
    return await query.update(
        status=OutboxStatus.PENDING, attempts=0, next_attempt_at=clock.now(), claimed_by=None
    )


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """Rows by (status, kind), and the age of the oldest row not yet finished (None: none)."""

    counts: dict[tuple[str, str], int]
    oldest_pending_age: timedelta | None

    def by_status(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for (status, _kind), n in self.counts.items():
            totals[status] = totals.get(status, 0) + n
        return totals


async def stats() -> OutboxStats:
    """Outbox depth by status and kind, and how long the oldest unfinished row has waited."""
    rows = (
        await OutboxMessage.annotate(n=Count("id"))
        .group_by("status", "kind")
        .values("status", "kind", "n")
    )
    counts = {(str(OutboxStatus(r["status"]).value), r["kind"]): int(r["n"]) for r in rows}
    unfinished = (*DUE_STATUSES, OutboxStatus.IN_FLIGHT)
    oldest = (
        await OutboxMessage.filter(status__in=unfinished)
        .order_by("created_at")
        .first()
        .values_list("created_at", flat=True)
    )
    oldest_at: datetime | None = oldest  # type: ignore[assignment]
    age = clock.now() - oldest_at if oldest_at is not None else None
    return OutboxStats(counts=counts, oldest_pending_age=age)


# (status, kind) pairs this process has set, so a pair that has no rows any more reads 0.
_GAUGED: set[tuple[str, str]] = set()


async def refresh_metrics() -> OutboxStats:
    """Set the outbox depth and oldest-pending-age gauges from the database; returns the
    stats they were set from."""
    current = await stats()
    for pair in _GAUGED - current.counts.keys():
        observability.OUTBOX_ROWS.labels(status=pair[0], kind=pair[1]).set(0)
    for (status, kind), n in current.counts.items():
        observability.OUTBOX_ROWS.labels(status=status, kind=kind).set(n)
    _GAUGED.update(current.counts)
    age = current.oldest_pending_age
    observability.OUTBOX_OLDEST_PENDING_AGE.set(age.total_seconds() if age is not None else 0)
    return current
