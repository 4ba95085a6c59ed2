"""Members: registration, look-up and listing. Each function owns its transaction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from loyalty import clock
from loyalty.errors import FieldError, ValidationError
from loyalty.events import service as events
from loyalty.jobs import JobQueue
from loyalty.members import normalize
from loyalty.members.errors import MemberNotFound
from loyalty.members.models import Channel, Gender, Member, MemberStatus

T = TypeVar("T")


@dataclass(frozen=True)
class Registration:
    """Outcome of :func:`register`: ``created`` is False when an existing member was found."""

    member: Member
    created: bool


def _collect(errors: list[FieldError], fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    try:
        return fn(*args, **kwargs)
    except normalize.InvalidField as exc:
        errors.append(exc.error)
        return None


async def register(
    *,
    channel: Channel,
    display_name: str,
    phone: str | None = None,
    email: str | None = None,
    birth_date: date | None = None,
    gender: Gender = Gender.UNDISCLOSED,
    timezone: str | None = None,
    region: str | None = None,
    jobs: JobQueue | None = None,
) -> Registration:
    """Register a member, or return the one that already owns the phone or email.

    Idempotent: concurrent identical calls create exactly one member (the unique phone/email
    keys decide; losers read the winner). Raises :class:`ValidationError` on bad input.
    """
    errors: list[FieldError] = []
    name = _collect(errors, normalize.display_name, display_name)
    e164 = _collect(errors, normalize.phone, phone) if phone is not None else None
    mail = _collect(errors, normalize.email, email) if email is not None else None
    born = _collect(errors, normalize.birth_date, birth_date) if birth_date else None
    if timezone is not None:
        _collect(errors, _check_timezone, timezone)
    if region is not None and len(region) > 64:
        errors.append(FieldError("region", "at most 64 characters", "TOO_LONG"))
    if errors:
        raise ValidationError(errors)

    existing = await _find_by_contact(e164, mail)
    if existing is not None:
        return Registration(existing, created=False)
    try:
        async with in_transaction() as conn:
            member = await Member.create(
                using_db=conn,
                display_name=name,
                phone=e164,
                email=mail,
                birth_date=born,
                birth_month=born.month if born else None,
                birth_day=born.day if born else None,
                gender=gender,
                timezone=timezone,
                region=region,
                registered_channel=channel,
                registered_at=clock.now(),
            )
            event_id = await events.record(
                kind="member.registered",
                dedupe_key=f"member.registered:{member.id}",
                member_id=member.id,
                payload={"channel": channel.value},
                connection=conn,
            )
    except IntegrityError:
        # A concurrent registration won the unique key; return its member.
        existing = await _find_by_contact(e164, mail)
        if existing is None:
            raise
        return Registration(existing, created=False)
    if jobs is not None:
        events.publish_later(jobs, event_id)
    return Registration(member, created=True)


def _check_timezone(value: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise normalize.InvalidField(FieldError("timezone", "unknown time zone")) from exc
    return value


async def _find_by_contact(phone: str | None, email: str | None) -> Member | None:
    if phone is not None:
        member = await Member.get_or_none(phone=phone)
        if member is not None:
            return member
    if email is not None:
        return await Member.get_or_none(email=email)
    return None


async def get(*, member_id: int, follow_merge: bool = True) -> Member:
    """The member with ``member_id``; a merged member resolves to its survivor."""
    member = await Member.get_or_none(id=member_id)
    seen = 0
    while member is not None and follow_merge and member.status == MemberStatus.MERGED:
        seen += 1
        if member.merged_into_id is None or seen > 16:  # type: ignore[attr-defined]
            break
        member = await Member.get_or_none(id=member.merged_into_id)  # type: ignore[attr-defined]
    if member is None:
        raise MemberNotFound(member_id)
    return member


async def page(*, first: int, after_id: int | None = None) -> tuple[list[Member], bool]:
    """Members by ascending id after ``after_id`` (keyset): ``(rows, has_next_page)``."""
    query = Member.filter(status__not=MemberStatus.MERGED)
    if after_id is not None:
        query = query.filter(id__gt=after_id)
    rows = await query.order_by("id").limit(first + 1)
    return rows[:first], len(rows) > first
