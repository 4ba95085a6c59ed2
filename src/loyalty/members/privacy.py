"""Data-subject rights: export everything we hold on a member, and erase it.

Every column of :class:`Member` is classified below as personal or not; a test fails when a
column is added without being classified, so export and erasure keep up with the model.
Other domains' rows follow :data:`loyalty.hooks.MEMBER_DATA_HANDLERS`.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Any

from tortoise.transactions import in_transaction

from loyalty import clock, hooks
from loyalty.audit import service as audit
from loyalty.auth.principal import Principal
from loyalty.errors import FieldError, ValidationError
from loyalty.events import service as events
from loyalty.jobs import JobQueue
from loyalty.members import service
from loyalty.members.errors import MemberAlreadyErased
from loyalty.members.models import Gender, Member, MemberStatus

ERASED_NAME = "已注销"

#: Personal columns and the value each one takes on erasure.
PERSONAL_FIELDS: dict[str, Any] = {
    "display_name": ERASED_NAME,
    "phone": None,
    "email": None,
    "birth_date": None,
    "birth_month": None,
    "birth_day": None,
    "gender": Gender.UNDISCLOSED,
    "timezone": None,
    "region": None,
    "tags": [],  # free text set by staff
}

#: Columns that identify no one: ids, channel codes, status, amounts and times the books need.
NON_PERSONAL_FIELDS: frozenset[str] = frozenset(
    {
        "id",
        "registered_channel",
        "registered_at",
        "status",
        "merged_into",
        "merged_into_id",
        "lifecycle_stage",
        "total_spend",
        "order_count",
        "first_order_at",
        "last_order_at",
        "created_at",
        "updated_at",
    }
)

MAX_REASON_LENGTH = 200


def _json(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


async def export(*, member_id: int, actor: Principal) -> dict[str, Any]:
    """One JSON-ready document: every personal field, identities, consents and each other
    domain's section (orders, ledger, messages…). A merged id exports its survivor.

    Records an audit entry (who exported whom). Raises :class:`MemberNotFound`.
    """
    member = await service.get(member_id=member_id)
    document: dict[str, Any] = {
        "member": {
            "id": member.id,
            "status": member.status.value,
            "registeredChannel": member.registered_channel.value,
            "registeredAt": member.registered_at.isoformat(),
            **{name: _json(getattr(member, name)) for name in PERSONAL_FIELDS},
            "stats": {
                "totalSpend": member.total_spend,
                "orderCount": member.order_count,
                "firstOrderAt": _json(member.first_order_at),
                "lastOrderAt": _json(member.last_order_at),
            },
        },
        "exportedAt": clock.now().isoformat(),
    }
    for handler in hooks.MEMBER_DATA_HANDLERS:
        document.update(await handler.export(member_id=member.id))
    await audit.record(
        actor=actor, action="member.export", target_type="Member", target_id=member.id
    )
    return document


async def erase(
    *, member_id: int, reason: str, actor: Principal, jobs: JobQueue | None = None
) -> Member:
    """Anonymise a member's personal data in one transaction; amounts and history stay.

    Identities are removed (no channel finds the member again), members merged into it are
    anonymised too, every other domain erases through its handler, and one audit entry records
    the reason without any erased value. Raises :class:`ValidationError`,
    :class:`MemberNotFound` and :class:`MemberAlreadyErased`; nothing is written then.
    """
    text = reason.strip()
    if not text or len(text) > MAX_REASON_LENGTH:
        raise ValidationError(
            FieldError("reason", f"1 to {MAX_REASON_LENGTH} characters", "INVALID")
        )
    async with in_transaction() as conn:
        member = await service.get(member_id=member_id, connection=conn)
        if member.status is MemberStatus.ERASED:
            raise MemberAlreadyErased("the member was already erased")
        erased = (
            await Member.filter(id=member.id, status__not=MemberStatus.ERASED)
            .using_db(conn)
            .update(status=MemberStatus.ERASED, **PERSONAL_FIELDS)
        )
        if erased != 1:
            raise MemberAlreadyErased("the member was already erased")
        absorbed = (
            await Member.filter(merged_into_id=member.id).using_db(conn).update(**PERSONAL_FIELDS)
        )
        for handler in hooks.MEMBER_DATA_HANDLERS:
            await handler.erase(member_id=member.id, connection=conn)
        await audit.record(
            actor=actor,
            action="member.erase",
            target_type="Member",
            target_id=member.id,
            details={"reason": text, "merged_members_erased": absorbed},
            connection=conn,
        )
        event_id = await events.record(
            kind="member.erased",
            dedupe_key=f"member.erased:{member.id}",
            member_id=member.id,
            payload={},
            connection=conn,
        )
    if jobs is not None:
        events.publish_later(jobs, event_id)
    return await service.get(member_id=member.id)
