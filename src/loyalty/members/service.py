"""Members: registration, identities, profile, consent and listing.

Each function owns its transaction (or joins the caller's when given ``connection``).
Merge lives in :mod:`loyalty.members.merge`; export and erasure in :mod:`loyalty.members.privacy`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeVar

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q, Subquery
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from loyalty import clock, db, hooks
from loyalty.errors import FieldError, ValidationError
from loyalty.events import service as events
from loyalty.jobs import JobQueue
from loyalty.members import normalize
from loyalty.members.errors import (
    IdentityConflict,
    IdentityNotFound,
    MemberNotActive,
    MemberNotFound,
)
from loyalty.members.models import (
    Channel,
    ChannelIdentity,
    Consent,
    ConsentPurpose,
    Gender,
    IdentityKind,
    LifecycleStage,
    Member,
    MemberStatus,
    MemberTag,
)

T = TypeVar("T")

# How often a registration retries after losing a unique-key race to a concurrent one.
_REGISTER_ATTEMPTS = 3
_MAX_MERGE_HOPS = 16


@dataclass(frozen=True)
class Registration:
    """Outcome of :func:`register`: ``created`` is False when an existing member was found."""

    member: Member
    created: bool
    linked: tuple[ChannelIdentity, ...] = ()


@dataclass(frozen=True)
class IdentityClaim:
    """An identity as the caller sent it (normalised by the service)."""

    kind: IdentityKind
    value: str
    scope: str | None = None


IdentityKey = tuple[IdentityKind, str, str]  # (kind, scope, value) as stored


def _collect(errors: list[FieldError], fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    try:
        return fn(*args, **kwargs)
    except normalize.InvalidField as exc:
        errors.append(exc.error)
        return None


def identity_key(
    kind: IdentityKind, value: str, scope: str | None = None, *, field: str = "value"
) -> IdentityKey:
    """The stored ``(kind, scope, value)``; raises :class:`ValidationError` on bad input."""
    try:
        stored_scope, stored_value = normalize.identity(kind, value, scope, field=field)
    except normalize.InvalidField as exc:
        raise ValidationError(exc.error) from exc
    return kind, stored_scope, stored_value


# --- identities -----------------------------------------------------------------------------


async def find_by_identity(
    *, kind: IdentityKind, value: str, scope: str | None = None
) -> Member | None:
    """The member a channel knows by ``value`` (a merged member resolves to its survivor).

    Phones and emails are normalised first ("138 1234 5678" finds ``+8613812345678``); scope
    matters only for WECHAT_OPENID. Raises :class:`ValidationError` when ``value`` cannot be
    normalised (e.g. not a phone number). Erased members are never found.
    """
    key = identity_key(kind, value, scope)
    owners = await _owners([key])
    return owners.get(key)


@db.retry_conflicts
async def link_identity(
    *,
    member_id: int,
    kind: IdentityKind,
    value: str,
    scope: str | None = None,
    channel: Channel,
    connection: BaseDBAsyncClient | None = None,
) -> ChannelIdentity:
    """Link an identity to a member (idempotent: linking it again returns the same row).

    Runs every :data:`loyalty.hooks.IDENTITY_LINKED_HOOKS` in the same transaction when a new
    row is written. Joins the caller's transaction when ``connection`` is given. Raises
    :class:`ValidationError`, :class:`MemberNotFound`, :class:`MemberNotActive` and
    :class:`IdentityConflict` (the identity belongs to another member); nothing is written then.
    """
    key = identity_key(kind, value, scope)
    if connection is not None:
        return await _link_in(connection, member_id, key, channel)
    try:
        async with in_transaction() as conn:
            return await _link_in(conn, member_id, key, channel)
    except IntegrityError:
        # A concurrent call linked the same identity first: same member → same answer.
        existing = await _identity_row(key)
        member = await get(member_id=member_id)
        if existing is not None and existing.member_id == member.id:  # type: ignore[attr-defined]
            return existing
        raise IdentityConflict("the identity belongs to another member", kind=kind.value) from None


async def _link_in(
    conn: BaseDBAsyncClient, member_id: int, key: IdentityKey, channel: Channel
) -> ChannelIdentity:
    member = await get(member_id=member_id, connection=conn)
    if member.status is not MemberStatus.ACTIVE:
        raise MemberNotActive(f"member is {member.status.value}")
    existing = await _identity_row(key, conn)
    if existing is not None:
        if existing.member_id != member.id:  # type: ignore[attr-defined]
            raise IdentityConflict("the identity belongs to another member", kind=key[0].value)
        return existing
    owner = await _contact_owner(key, conn)
    if owner is not None and owner.id != member.id:
        raise IdentityConflict("the identity belongs to another member", kind=key[0].value)
    # A savepoint, so a lost unique-key race does not abort the caller's transaction.
    async with conn._in_transaction() as sp:
        row = await _create_identity(sp, member, key, channel)
    return row


async def _create_identity(
    conn: BaseDBAsyncClient, member: Member, key: IdentityKey, channel: Channel
) -> ChannelIdentity:
    kind, scope, value = key
    row = await ChannelIdentity.create(
        member_id=member.id,
        kind=kind,
        scope=scope,
        value=value,
        channel=channel,
        linked_at=clock.now(),
        using_db=conn,
    )
    # The first phone/email linked becomes the member's contact.
    if kind is IdentityKind.PHONE and member.phone is None:
        await Member.filter(id=member.id, phone=None).using_db(conn).update(phone=value)
        member.phone = value
    elif kind is IdentityKind.EMAIL and member.email is None:
        await Member.filter(id=member.id, email=None).using_db(conn).update(email=value)
        member.email = value
    for hook in hooks.IDENTITY_LINKED_HOOKS:
        await hook(member.id, kind.value, scope or None, value, conn)
    return row


async def unlink_identity(
    *, member_id: int, kind: IdentityKind, value: str, scope: str | None = None
) -> Member:
    """Remove one identity from a member; removing its phone/email clears that contact.

    Raises :class:`IdentityNotFound` when the member has no such identity.
    """
    key = identity_key(kind, value, scope)
    async with in_transaction() as conn:
        member = await get(member_id=member_id, connection=conn)
        kind, scope_, value_ = key
        deleted = (
            await ChannelIdentity.filter(member_id=member.id, kind=kind, scope=scope_, value=value_)
            .using_db(conn)
            .delete()
        )
        contact = {IdentityKind.PHONE: "phone", IdentityKind.EMAIL: "email"}.get(kind)
        cleared = 0
        if contact is not None and getattr(member, contact) == value_:
            cleared = (
                await Member.filter(id=member.id, **{contact: value_})
                .using_db(conn)
                .update(**{contact: None})
            )
            setattr(member, contact, None)
        if not deleted and not cleared:
            raise IdentityNotFound(kind.value)
    return member


async def _identity_row(
    key: IdentityKey, conn: BaseDBAsyncClient | None = None
) -> ChannelIdentity | None:
    kind, scope, value = key
    return await ChannelIdentity.filter(kind=kind, scope=scope, value=value).using_db(conn).first()


async def _contact_owner(key: IdentityKey, conn: BaseDBAsyncClient | None) -> Member | None:
    """The member whose phone/email column holds the value (rows made before identities)."""
    kind, _scope, value = key
    if kind is IdentityKind.PHONE:
        return await Member.filter(phone=value).using_db(conn).first()
    if kind is IdentityKind.EMAIL:
        return await Member.filter(email=value).using_db(conn).first()
    return None


async def _owners(
    keys: Sequence[IdentityKey], conn: BaseDBAsyncClient | None = None
) -> dict[IdentityKey, Member]:
    """Owner of each key that has one (merged owners resolved to their survivors)."""
    if not keys:
        return {}
    condition = Q()
    for kind, scope, value in keys:
        condition |= Q(kind=kind, scope=scope, value=value)
    rows = await ChannelIdentity.filter(condition).using_db(conn)
    owner_ids: dict[IdentityKey, int] = {
        (row.kind, row.scope, row.value): row.member_id  # type: ignore[attr-defined]
        for row in rows
    }
    phones = [v for k, _s, v in keys if k is IdentityKind.PHONE and (k, "", v) not in owner_ids]
    emails = [v for k, _s, v in keys if k is IdentityKind.EMAIL and (k, "", v) not in owner_ids]
    if phones or emails:
        contact = Q(phone__in=phones) if phones else Q()
        if emails:
            contact = contact | Q(email__in=emails) if phones else Q(email__in=emails)
        for member in await Member.filter(contact).using_db(conn):
            if member.phone in phones:
                owner_ids[(IdentityKind.PHONE, "", member.phone)] = member.id  # type: ignore[index]
            if member.email in emails:
                owner_ids[(IdentityKind.EMAIL, "", member.email)] = member.id  # type: ignore[index]
    members = await _resolve_many(set(owner_ids.values()), conn)
    return {key: members[mid] for key, mid in owner_ids.items() if mid in members}


async def _resolve_many(ids: Iterable[int], conn: BaseDBAsyncClient | None) -> dict[int, Member]:
    """Members by id, each merged member replaced by its survivor; erased ones left out."""
    wanted = set(ids)
    if not wanted:
        return {}
    rows = {m.id: m for m in await Member.filter(id__in=wanted).using_db(conn)}
    resolved: dict[int, Member] = {}
    for member_id in wanted:
        member = rows.get(member_id)
        if member is not None and member.status is MemberStatus.MERGED:
            try:
                member = await get(member_id=member.id, connection=conn)
            except MemberNotFound:
                member = None
        if member is not None and member.status is not MemberStatus.ERASED:
            resolved[member_id] = member
    return resolved


# --- registration ---------------------------------------------------------------------------


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
    identities: Sequence[IdentityClaim] = (),
    tags: Sequence[str] = (),
    jobs: JobQueue | None = None,
) -> Registration:
    """Register a member, or return the one that already owns the phone, email or an identity.

    When a member is found (``created=False``) the identities it lacks are linked to it.
    Idempotent: concurrent identical calls create exactly one member (the unique keys decide;
    losers read the winner). Raises :class:`ValidationError` on bad input and
    :class:`IdentityConflict` when the given phone/email/identities belong to different members.
    """
    errors: list[FieldError] = []
    name = _collect(errors, normalize.display_name, display_name)
    e164 = _collect(errors, normalize.phone, phone) if phone is not None else None
    mail = _collect(errors, normalize.email, email) if email is not None else None
    born = _collect(errors, normalize.birth_date, birth_date) if birth_date else None
    if timezone is not None:
        _collect(errors, _check_timezone, timezone)
    if region is not None:
        _collect(errors, normalize.short_text, region, field="region")
    clean_tags = _collect(errors, normalize.tags, list(tags)) or []
    keys: list[IdentityKey] = []
    if e164 is not None:
        keys.append((IdentityKind.PHONE, "", e164))
    if mail is not None:
        keys.append((IdentityKind.EMAIL, "", mail))
    for index, claim in enumerate(identities):
        scoped = _collect(
            errors,
            normalize.identity,
            claim.kind,
            claim.value,
            claim.scope,
            field=f"identities[{index}].value",
        )
        if scoped is not None and (claim.kind, *scoped) not in keys:
            keys.append((claim.kind, *scoped))
    if errors:
        raise ValidationError(errors)

    profile = {
        "display_name": name,
        "phone": e164,
        "email": mail,
        "birth_date": born,
        "birth_month": born.month if born else None,
        "birth_day": born.day if born else None,
        "gender": gender,
        "timezone": timezone,
        "region": region.strip() if region else None,
        "tags": clean_tags,
    }
    for attempt in range(_REGISTER_ATTEMPTS):
        try:
            return await _register_once(channel, profile, keys, jobs)
        except IntegrityError:
            # A concurrent call won a unique key; the next attempt finds its member.
            if attempt == _REGISTER_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


async def _register_once(
    channel: Channel, profile: dict[str, Any], keys: list[IdentityKey], jobs: JobQueue | None
) -> Registration:
    owners = await _owners(keys)
    distinct = {member.id: member for member in owners.values()}
    if len(distinct) > 1:
        raise IdentityConflict(
            "the phone, email and identities belong to different members",
            kinds=sorted({k[0].value for k in owners}),
        )
    if distinct:
        (member,) = distinct.values()
        missing = [key for key in keys if key not in owners]
        linked: list[ChannelIdentity] = []
        if missing:
            if member.status is not MemberStatus.ACTIVE:
                raise MemberNotActive(f"member is {member.status.value}")
            async with in_transaction() as conn:
                for key in missing:
                    linked.append(await _create_identity(conn, member, key, channel))
        return Registration(member, created=False, linked=tuple(linked))

    async with in_transaction() as conn:
        member = await Member.create(
            using_db=conn, registered_channel=channel, registered_at=clock.now(), **profile
        )
        linked = [await _create_identity(conn, member, key, channel) for key in keys]
        await _write_tags(conn, member.id, profile["tags"])
        event_id = await events.record(
            kind="member.registered",
            dedupe_key=f"member.registered:{member.id}",
            member_id=member.id,
            payload={"channel": channel.value},
            connection=conn,
        )
    if jobs is not None:
        events.publish_later(jobs, event_id)
    return Registration(member, created=True, linked=tuple(linked))


def _check_timezone(value: str, *, field: str = "timezone") -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise normalize.InvalidField(FieldError(field, "unknown time zone")) from exc
    return value


# --- reading --------------------------------------------------------------------------------


async def get(
    *, member_id: int, follow_merge: bool = True, connection: BaseDBAsyncClient | None = None
) -> Member:
    """The member with ``member_id``; a merged member resolves to its survivor."""
    member = await Member.filter(id=member_id).using_db(connection).first()
    hops = 0
    while member is not None and follow_merge and member.status is MemberStatus.MERGED:
        hops += 1
        target = member.merged_into_id  # type: ignore[attr-defined]
        if target is None or hops > _MAX_MERGE_HOPS:
            break
        member = await Member.filter(id=target).using_db(connection).first()
    if member is None:
        raise MemberNotFound(member_id)
    return member


# Filters answered by other domains: name → an async function giving a ``Q`` over Member
# (sub-selects on their own tables). The tiers domain registers ``"tier"``.
ExternalFilter = Callable[[str], Awaitable[Q]]
EXTERNAL_FILTERS: dict[str, ExternalFilter] = {}


@dataclass(frozen=True)
class MemberFilter:
    """What :func:`page` and :func:`count` select. Merged members are never listed."""

    text: str | None = None
    lifecycle_stage: LifecycleStage | None = None
    registered_channel: Channel | None = None
    birth_month: int | None = None
    tag: str | None = None
    tier: str | None = None
    status: MemberStatus | None = None


async def _filtered(spec: MemberFilter) -> QuerySet[Member]:
    errors: list[FieldError] = []
    query = Member.filter(status__not=MemberStatus.MERGED)
    if spec.status is not None:
        query = query.filter(status=spec.status)
    if spec.text is not None:
        text = spec.text.strip()
        if not text or len(text) > 64:
            errors.append(FieldError("filter.text", "1 to 64 characters", "INVALID"))
        elif text.isdigit() and len(text) >= 4:
            # Digits search the phone's last digits (as read out at a till) or the name.
            query = query.filter(Q(phone__endswith=text) | Q(display_name__contains=text))
        else:
            query = query.filter(display_name__icontains=text)
    if spec.lifecycle_stage is not None:
        query = query.filter(lifecycle_stage=spec.lifecycle_stage)
    if spec.registered_channel is not None:
        query = query.filter(registered_channel=spec.registered_channel)
    if spec.birth_month is not None:
        if not 1 <= spec.birth_month <= 12:
            errors.append(FieldError("filter.birthMonth", "must be 1 to 12", "INVALID"))
        query = query.filter(birth_month=spec.birth_month)
    if spec.tag is not None:
        tagged = MemberTag.filter(tag=spec.tag.strip()).values("member_id")
        query = query.filter(id__in=Subquery(tagged))
    if spec.tier is not None:
        provider = EXTERNAL_FILTERS.get("tier")
        if provider is None:
            errors.append(FieldError("filter.tier", "tier filter is not available", "INVALID"))
        else:
            query = query.filter(await provider(spec.tier))
    if errors:
        raise ValidationError(errors)
    return query


async def page(
    *, first: int, after_id: int | None = None, spec: MemberFilter | None = None
) -> tuple[list[Member], bool]:
    """Members by ascending id after ``after_id`` (keyset): ``(rows, has_next_page)``."""
    query = await _filtered(spec or MemberFilter())
    if after_id is not None:
        query = query.filter(id__gt=after_id)
    rows = await query.order_by("id").limit(first + 1)
    return rows[:first], len(rows) > first


async def count(*, spec: MemberFilter | None = None) -> int:
    """How many members match (one COUNT query)."""
    return await (await _filtered(spec or MemberFilter())).count()


def birthday_days(on: date) -> list[int]:
    """The birth days of ``on``'s month celebrated on ``on``: Feb 29 births celebrate on Feb 28
    in common years (:func:`loyalty.clock.celebration_day`)."""
    days = [on.day]
    if (on.month, on.day) == (2, 28) and clock.celebration_day(date(2000, 2, 29), on.year) == on:
        days.append(29)
    return days


async def birthday_member_ids(*, on: date, after_id: int = 0, limit: int = 1000) -> list[int]:
    """Ids of active members celebrating their birthday on ``on``, ascending, after
    ``after_id`` (keyset paging), at most ``limit``. One statement on the
    ``(birth_month, birth_day)`` index: no scan of the member table."""
    rows = (
        await Member.filter(
            birth_month=on.month,
            birth_day__in=birthday_days(on),
            status=MemberStatus.ACTIVE,
            id__gt=after_id,
        )
        .order_by("id")
        .limit(limit)
        .values_list("id", flat=True)
    )
    return [int(i) for i in rows]  # type: ignore[call-overload]


# --- profile --------------------------------------------------------------------------------


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


@dataclass
class ProfileChanges:
    """Fields to change; ``UNSET`` leaves a field as it is, ``None`` clears it."""

    display_name: Any = UNSET
    phone: Any = UNSET
    email: Any = UNSET
    birth_date: Any = UNSET
    gender: Any = UNSET
    timezone: Any = UNSET
    region: Any = UNSET
    tags: Any = UNSET
    errors: list[FieldError] = field(default_factory=list)


#: Field error code of a phone/email a member tried to set without verifying it.
VERIFICATION_REQUIRED = "VERIFICATION_REQUIRED"


async def update_profile(
    *,
    member_id: int,
    changes: ProfileChanges,
    channel: Channel = Channel.CONSOLE,
    self_service: bool = False,
) -> Member:
    """Change profile fields. A new phone/email replaces the old one's identity row.

    A phone or email is an identity (the till and dedupe find members by it), so
    ``self_service`` callers (the member itself) may keep or clear theirs but never set a new
    one: that is a :class:`ValidationError` with code ``VERIFICATION_REQUIRED``, raised before
    any other member is looked up, so the answer is the same whether or not the value belongs
    to someone. Phones reach a member through a verified path instead (WeChat's phone number,
    a channel system's service key, staff).

    Raises :class:`ValidationError`, :class:`MemberNotFound`, :class:`MemberNotActive` and
    :class:`IdentityConflict` (the phone/email belongs to another member); nothing is written.
    """
    errors: list[FieldError] = []
    values: dict[str, Any] = {}
    if changes.display_name is not UNSET:
        if changes.display_name is None:
            errors.append(FieldError("displayName", "must not be empty", "REQUIRED"))
        else:
            values["display_name"] = _collect(errors, normalize.display_name, changes.display_name)
    contacts: dict[str, str | None] = {}
    if changes.phone is not UNSET:
        contacts["phone"] = (
            _collect(errors, normalize.phone, changes.phone) if changes.phone else None
        )
    if changes.email is not UNSET:
        contacts["email"] = (
            _collect(errors, normalize.email, changes.email) if changes.email else None
        )
    if changes.birth_date is not UNSET:
        born = (
            _collect(errors, normalize.birth_date, changes.birth_date)
            if changes.birth_date
            else None
        )
        values.update(
            birth_date=born,
            birth_month=born.month if born else None,
            birth_day=born.day if born else None,
        )
    if changes.gender is not UNSET:
        values["gender"] = changes.gender or Gender.UNDISCLOSED
    if changes.timezone is not UNSET:
        if changes.timezone:
            _collect(errors, _check_timezone, changes.timezone)
        values["timezone"] = changes.timezone or None
    if changes.region is not UNSET:
        values["region"] = (
            _collect(errors, normalize.short_text, changes.region, field="region")
            if changes.region
            else None
        ) or None
    new_tags: list[str] | None = None
    if changes.tags is not UNSET:
        new_tags = _collect(errors, normalize.tags, list(changes.tags or [])) or []
        values["tags"] = new_tags
    if errors:
        raise ValidationError(errors)

    async with in_transaction() as conn:
        member = await get(member_id=member_id, connection=conn)
        if self_service:
            _refuse_unverified_contacts(member, contacts)
        if member.status is not MemberStatus.ACTIVE:
            raise MemberNotActive(f"member is {member.status.value}")
        for column, new_value in contacts.items():
            await _replace_contact(conn, member, column, new_value, channel)
        if values:
            await Member.filter(id=member.id).using_db(conn).update(**values)
        if new_tags is not None:
            await MemberTag.filter(member_id=member.id).using_db(conn).delete()
            await _write_tags(conn, member.id, new_tags)
        member = await get(member_id=member.id, connection=conn)
    return member


def _refuse_unverified_contacts(member: Member, contacts: dict[str, str | None]) -> None:
    """Refuse every new phone/email a member sets itself (keeping or clearing is fine).

    Only the member's own current values are compared, so the refusal says nothing about
    anybody else's data.
    """
    how = {
        "phone": "verify a phone number through the mini-program (bindPhoneNumber) or at a store",
        "email": "an email address can only be changed by staff",
    }
    refused = [
        FieldError(column, how[column], VERIFICATION_REQUIRED)
        for column, value in contacts.items()
        if value is not None and value != getattr(member, column)
    ]
    if refused:
        raise ValidationError(refused)


async def _replace_contact(
    conn: BaseDBAsyncClient, member: Member, column: str, value: str | None, channel: Channel
) -> None:
    kind = IdentityKind.PHONE if column == "phone" else IdentityKind.EMAIL
    old = getattr(member, column)
    if old == value:
        return
    if value is not None:
        key: IdentityKey = (kind, "", value)
        owner = (await _owners([key], conn)).get(key)
        if owner is not None and owner.id != member.id:
            raise IdentityConflict(f"the {column} belongs to another member", kind=kind.value)
    if old is not None:
        await (
            ChannelIdentity.filter(member_id=member.id, kind=kind, value=old)
            .using_db(conn)
            .delete()
        )
    await Member.filter(id=member.id).using_db(conn).update(**{column: None})
    setattr(member, column, None)
    if value is not None:
        if await _identity_row((kind, "", value), conn) is None:
            await _create_identity(conn, member, (kind, "", value), channel)
        await Member.filter(id=member.id).using_db(conn).update(**{column: value})
        setattr(member, column, value)


async def _write_tags(conn: BaseDBAsyncClient, member_id: int, tags: Sequence[str]) -> None:
    if tags:
        await MemberTag.bulk_create(
            [MemberTag(member_id=member_id, tag=tag) for tag in tags], using_db=conn
        )


# --- consent --------------------------------------------------------------------------------

MAX_POLICY_VERSION = 32


async def set_consent(
    *,
    member_id: int,
    purpose: ConsentPurpose,
    granted: bool,
    channel: Channel,
    policy_version: str,
) -> Consent:
    """Record a consent decision (history is kept; the latest row per purpose is current).

    Repeating the current decision under the same policy version writes nothing and returns
    the current row. Raises :class:`ValidationError`, :class:`MemberNotFound`,
    :class:`MemberNotActive`.
    """
    version = policy_version.strip()
    if not version or len(version) > MAX_POLICY_VERSION:
        raise ValidationError(
            FieldError("policyVersion", f"1 to {MAX_POLICY_VERSION} characters", "INVALID")
        )
    async with in_transaction() as conn:
        member = await get(member_id=member_id, connection=conn)
        if member.status is not MemberStatus.ACTIVE:
            raise MemberNotActive(f"member is {member.status.value}")
        current = (
            await Consent.filter(member_id=member.id, purpose=purpose)
            .using_db(conn)
            .order_by("-id")
            .first()
        )
        if current is not None and current.granted == granted and current.policy_version == version:
            return current
        return await Consent.create(
            member_id=member.id,
            purpose=purpose,
            granted=granted,
            channel=channel,
            policy_version=version,
            recorded_at=clock.now(),
            using_db=conn,
        )


def current_consents(rows: Iterable[Consent]) -> list[Consent]:
    """The latest row per purpose (rows of one member), in purpose order."""
    latest: dict[ConsentPurpose, Consent] = {}
    for row in sorted(rows, key=lambda r: r.id):
        latest[row.purpose] = row
    order = list(ConsentPurpose)
    return sorted(latest.values(), key=lambda r: order.index(r.purpose))
