"""Duplicate candidates and merging two members into one."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from loyalty import clock, db, hooks
from loyalty.audit import service as audit
from loyalty.auth.principal import Principal
from loyalty.errors import FieldError, ValidationError
from loyalty.events import service as events
from loyalty.jobs import JobQueue
from loyalty.members import holdings, service
from loyalty.members.errors import (
    IdempotencyConflict,
    MemberNotActive,
    MemberNotFound,
    MergeIntoMerged,
    MergeIntoSelf,
    MergeSourceHoldsValue,
    MergeSourceNotActive,
)
from loyalty.members.models import DuplicateHint, Gender, Member, MemberMerge, MemberStatus

MAX_KEY_LENGTH = 128

# Profile fields the survivor takes from the merged member when it has none of its own.
_FILL_BLANKS = ("birth_date", "birth_month", "birth_day", "timezone", "region")


@db.retry_conflicts
async def merge(
    *,
    survivor_id: int,
    merged_id: int,
    idempotency_key: str,
    actor: Principal,
    jobs: JobQueue | None = None,
    reason: str | None = None,
    only_without_value: bool = False,
) -> Member:
    """Merge ``merged_id`` into ``survivor_id`` in one transaction; returns the survivor.

    Identities, consents (the stricter wins) and every other domain's rows (through
    :data:`loyalty.hooks.MEMBER_DATA_HANDLERS`) move to the survivor; running stats add up; the
    merged member becomes MERGED with ``merged_into`` set; one audit entry is written, listed
    under both members, with who asked (``actor``), why (``reason``) and what moved (counts).
    Idempotent on ``idempotency_key``: the same key and members return the same survivor, the
    same key with other members raises :class:`IdempotencyConflict`. With
    ``only_without_value`` the merge happens only if the merged member holds nothing beyond
    bookkeeping (:func:`loyalty.members.holdings.holds_value`), judged inside the transaction;
    else :class:`MergeSourceHoldsValue`. Raises :class:`MergeIntoSelf`,
    :class:`MergeIntoMerged`, :class:`MergeSourceNotActive`, :class:`MemberNotActive`,
    :class:`MemberNotFound`; nothing is written then.
    """
    key = idempotency_key.strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ValidationError(
            FieldError("idempotencyKey", f"1 to {MAX_KEY_LENGTH} characters", "INVALID")
        )
    if survivor_id == merged_id:
        raise MergeIntoSelf("a member cannot be merged into itself")
    try:
        async with in_transaction() as conn:
            prior = await MemberMerge.filter(idempotency_key=key).using_db(conn).first()
            if prior is not None:
                return await _replay(prior, survivor_id, merged_id)
            # Lock both rows in id order, so crossing merges (A into B, B into A) queue up
            # instead of deadlocking on PostgreSQL (SQLite serialises transactions anyway).
            rows = {
                m.id: m
                for m in await Member.filter(id__in=[survivor_id, merged_id])
                .select_for_update()
                .order_by("id")
                .using_db(conn)
            }
            survivor, merged = rows.get(survivor_id), rows.get(merged_id)
            if survivor is None:
                raise MemberNotFound(survivor_id)
            if merged is None:
                raise MemberNotFound(merged_id)
            if survivor.status is MemberStatus.MERGED:
                raise MergeIntoMerged("the survivor was itself merged into another member")
            if survivor.status is not MemberStatus.ACTIVE:
                raise MemberNotActive(f"the survivor is {survivor.status.value}")
            if merged.status is not MemberStatus.ACTIVE:
                raise MergeSourceNotActive(f"the member to merge is {merged.status.value}")

            # Claim the merged member first: on PostgreSQL this row lock makes a concurrent
            # merge of the same member wait and then find it MERGED.
            claimed = (
                await Member.filter(id=merged_id, status=MemberStatus.ACTIVE)
                .using_db(conn)
                .update(
                    status=MemberStatus.MERGED, merged_into_id=survivor_id, phone=None, email=None
                )
            )
            if claimed != 1:
                raise MergeSourceNotActive("the member to merge is no longer active")
            contacts = {"phone": merged.phone, "email": merged.email}
            merged = await Member.filter(id=merged_id).using_db(conn).get()  # stats as of the claim
            combined = _combined(survivor, merged)
            # The merged member's phone/email identities move; the survivor adopts them as
            # contact when it has none (the claim above cleared the merged member's columns).
            for column, value in contacts.items():
                if getattr(survivor, column) is None and value is not None:
                    combined[column] = value
            updated = (
                await Member.filter(id=survivor_id, status=MemberStatus.ACTIVE)
                .using_db(conn)
                .update(
                    total_spend=F("total_spend") + merged.total_spend,
                    order_count=F("order_count") + merged.order_count,
                    **combined,
                )
            )
            if updated != 1:
                raise MergeIntoMerged("the survivor is no longer active")
            moved = await holdings.count(member_id=merged_id, connection=conn)
            if only_without_value and holdings.holds_value(moved):
                raise MergeSourceHoldsValue("the member to merge holds orders, points or claims")
            # Every handler's rows are locked before any moves, in the ledger's lock order
            # (points accounts, then orders, then the rest).
            for handler in hooks.MEMBER_DATA_HANDLERS:
                lock = getattr(handler, "lock", None)
                if lock is not None:
                    await lock(survivor_id=survivor_id, merged_id=merged_id, connection=conn)
            for handler in hooks.MEMBER_DATA_HANDLERS:
                await handler.merge(survivor_id=survivor_id, merged_id=merged_id, connection=conn)
            await MemberMerge.create(
                idempotency_key=key,
                survivor_id=survivor_id,
                merged_id=merged_id,
                actor=actor.subject,
                merged_at=clock.now(),
                using_db=conn,
            )
            await audit.record(
                actor=actor,
                action="member.merge",
                target_type="Member",
                target_id=survivor_id,
                related_id=merged_id,
                details={
                    "survivor_id": survivor_id,
                    "merged_id": merged_id,
                    "requested_by": actor.subject,
                    "reason": reason,
                    "idempotency_key": key,
                    "moved": moved,
                },
                connection=conn,
            )
            event_id = await events.record(
                kind="member.merged",
                dedupe_key=f"member.merged:{merged_id}",
                member_id=survivor_id,
                payload={"survivor_id": survivor_id, "merged_id": merged_id},
                connection=conn,
            )
    except (IntegrityError, MergeSourceNotActive):
        # A concurrent call with the same key may have won: answer as it did.
        prior = await MemberMerge.filter(idempotency_key=key).first()
        if prior is None:
            raise
        return await _replay(prior, survivor_id, merged_id)
    if jobs is not None:
        events.publish_later(jobs, event_id)
    return await service.get(member_id=survivor_id)


async def _replay(prior: MemberMerge, survivor_id: int, merged_id: int) -> Member:
    if (prior.survivor_id, prior.merged_id) != (survivor_id, merged_id):
        raise IdempotencyConflict("the idempotency key was used for another merge")
    return await service.get(member_id=survivor_id)


def _combined(survivor: Member, merged: Member) -> dict[str, object]:
    """Order times and blank profile fields the survivor takes over."""
    values: dict[str, object] = {}
    firsts = [t for t in (survivor.first_order_at, merged.first_order_at) if t is not None]
    lasts = [t for t in (survivor.last_order_at, merged.last_order_at) if t is not None]
    if firsts:
        values["first_order_at"] = min(firsts)
    if lasts:
        values["last_order_at"] = max(lasts)
    if survivor.birth_date is None and merged.birth_date is not None:
        values.update({name: getattr(merged, name) for name in _FILL_BLANKS[:3]})
    for name in _FILL_BLANKS[3:]:
        if getattr(survivor, name) is None and getattr(merged, name) is not None:
            values[name] = getattr(merged, name)
    if survivor.gender is Gender.UNDISCLOSED and merged.gender is not Gender.UNDISCLOSED:
        values["gender"] = merged.gender
    return values


#: Hint reason: one member proved through WeChat a phone number the other member holds.
WECHAT_PHONE = "WECHAT_PHONE"


async def record_duplicate(*, member_id: int, other_id: int, reason: str) -> None:
    """Record that two members may be one person, for :func:`duplicate_candidates` (listed
    while both are active). Idempotent: the same pair and reason is kept once."""
    a, b = sorted((member_id, other_id))
    if a == b:
        return
    if await DuplicateHint.filter(member_a_id=a, member_b_id=b, reason=reason).exists():
        return
    with contextlib.suppress(IntegrityError):  # a concurrent call recorded it
        await DuplicateHint.create(
            member_a_id=a, member_b_id=b, reason=reason, created_at=clock.now()
        )


@dataclass(frozen=True)
class DuplicateCandidate:
    """Two active members that may be one person, and why (``reason``)."""

    member_a_id: int
    member_b_id: int
    reason: str


_CANDIDATES_SQL = """
SELECT a_id, b_id, reason FROM (
  SELECT a.id AS a_id, b.id AS b_id, 'NAME_AND_BIRTHDAY' AS reason
  FROM member a JOIN member b
    ON a.display_name = b.display_name AND a.birth_date = b.birth_date AND a.id < b.id
  WHERE a.status = 'ACTIVE' AND b.status = 'ACTIVE'
  UNION
  SELECT CASE WHEN c.member_id < p.member_id THEN c.member_id ELSE p.member_id END,
         CASE WHEN c.member_id < p.member_id THEN p.member_id ELSE c.member_id END,
         CASE WHEN p.kind = 'PHONE' THEN 'PHONE' ELSE 'EMAIL' END
  FROM channel_identity c
  JOIN channel_identity p
    ON p.kind IN ('PHONE', 'EMAIL') AND c.kind NOT IN ('PHONE', 'EMAIL')
   AND (p.value = c.value OR p.value = {concat}) AND p.member_id <> c.member_id
  JOIN member ma ON ma.id = c.member_id AND ma.status = 'ACTIVE'
  JOIN member mb ON mb.id = p.member_id AND mb.status = 'ACTIVE'
  UNION
  SELECT h.member_a_id, h.member_b_id, h.reason
  FROM member_duplicate_hint h
  JOIN member ma ON ma.id = h.member_a_id AND ma.status = 'ACTIVE'
  JOIN member mb ON mb.id = h.member_b_id AND mb.status = 'ACTIVE'
) pairs
WHERE a_id > {p1} OR (a_id = {p2} AND (b_id > {p3} OR (b_id = {p4} AND reason > {p5})))
ORDER BY a_id, b_id, reason
LIMIT {p6}
"""


async def duplicate_candidates(
    *, first: int, after: tuple[int, int, str] | None = None
) -> tuple[list[DuplicateCandidate], bool]:
    """Pairs of active members that look like one person, in a stable keyset order.

    Reasons: NAME_AND_BIRTHDAY (same display name and birth date); PHONE / EMAIL (a card,
    app or store account number of one member is another member's phone (with or without
    +86) or email); the reasons of recorded hints (:func:`record_duplicate`, e.g.
    WECHAT_PHONE). Phones, emails and unionids themselves are unique keys, so they can
    never be shared by two members. Returns ``(rows, has_next_page)``.
    """
    a_id, b_id, reason = after or (0, 0, "")
    conn = db.connection()
    postgres = db.dialect() == "postgres"
    marks = [f"${i}" for i in range(1, 7)] if postgres else ["?"] * 6
    sql = _CANDIDATES_SQL.format(
        concat="'+86' || c.value",
        p1=marks[0],
        p2=marks[1],
        p3=marks[2],
        p4=marks[3],
        p5=marks[4],
        p6=marks[5],
    )
    _count, rows = await conn.execute_query(sql, [a_id, a_id, b_id, b_id, reason, first + 1])
    found = [
        DuplicateCandidate(int(row["a_id"]), int(row["b_id"]), str(row["reason"])) for row in rows
    ]
    return found[:first], len(found) > first
