"""Benefits: the catalog, tier entitlements, members' benefits, claims and reservations.

Quotas are counted in one row per (member, benefit, period key), changed only by conditional
single statements (``used = used + 1 WHERE used < quota``) whose row count decides: correct
under concurrency on PostgreSQL and SQLite without row locks. Claims are idempotent on
``(member as named in the request, idempotency_key)``, which a merge leaves as it was.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from loyalty import clock, db
from loyalty.benefits import config as kind_config
from loyalty.benefits import periods
from loyalty.benefits.errors import (
    BenefitNotFound,
    ClaimNotFound,
    IdempotencyConflict,
    NotEntitled,
    QuotaExhausted,
    ReservationNotActive,
    WrongChannel,
)
from loyalty.benefits.models import (
    Benefit,
    BenefitClaim,
    BenefitCounter,
    BenefitKind,
    ClaimStatus,
    QuotaPeriod,
    TierEntitlement,
)
from loyalty.errors import FieldError, FieldErrors, ValidationError
from loyalty.jobs import JobQueue
from loyalty.members import service as members
from loyalty.members.errors import MemberNotActive
from loyalty.members.models import Channel, MemberStatus
from loyalty.points.service import ledger
from loyalty.tiers import service as tiers
from loyalty.tiers.models import Tier
from loyalty.tiers.rules import CODE_RE

MAX_QUOTA = 100_000
DEFAULT_HOLD_SECONDS = 900
MAX_HOLD_SECONDS = 24 * 3600


# --- catalog ----------------------------------------------------------------------------------


def _check_channels(channels: Sequence[str], errors: FieldErrors) -> list[str]:
    known = {c.value for c in Channel}
    out: list[str] = []
    for i, channel in enumerate(channels):
        if channel not in known:
            errors.add(f"input.channels[{i}]", f"unknown channel {channel!r}")
        elif channel not in out:
            out.append(channel)
    return out


async def create_benefit(
    *,
    code: str,
    name: str,
    kind: BenefitKind,
    config: Any = None,
    channels: Sequence[str] = (),
    description: str = "",
) -> Benefit:
    """Add a catalog entry. Raises :class:`ValidationError` for a bad code, name, channel or a
    config the kind does not accept (paths ``input.config.<key>``)."""
    errors = FieldErrors()
    code = code.strip().upper()
    if not CODE_RE.match(code):
        errors.add("input.code", "1–32 of A–Z, 0–9 and _, starting with a letter")
    if not name.strip() or len(name) > 64:
        errors.add("input.name", "1–64 characters")
    clean_channels = _check_channels(channels, errors)
    try:
        clean_config = kind_config.validate(
            kind, {} if config is None else config, field="input.config"
        )
    except ValidationError as exc:
        errors.errors.extend(exc.errors)
        clean_config = {}
    errors.raise_if_any()
    try:
        return await Benefit.create(
            code=code,
            name=name.strip(),
            kind=kind,
            config=clean_config,
            channels=clean_channels,
            description=description,
        )
    except IntegrityError as exc:
        raise ValidationError(
            FieldError("input.code", "a benefit with this code exists", "DUPLICATE")
        ) from exc


async def update_benefit(
    *,
    code: str,
    name: str | None = None,
    config: Any = None,
    channels: Sequence[str] | None = None,
    description: str | None = None,
    active: bool | None = None,
) -> Benefit:
    """Change a catalog entry (None keeps a value). The kind cannot change."""
    benefit = await get_benefit(code=code)
    errors = FieldErrors()
    changes: dict[str, Any] = {}
    if name is not None:
        if not name.strip() or len(name) > 64:
            errors.add("input.name", "1–64 characters")
        changes["name"] = name.strip()
    if config is not None:
        try:
            changes["config"] = kind_config.validate(
                BenefitKind(benefit.kind), config, field="input.config"
            )
        except ValidationError as exc:
            errors.errors.extend(exc.errors)
    if channels is not None:
        changes["channels"] = _check_channels(channels, errors)
    if description is not None:
        changes["description"] = description
    if active is not None:
        changes["active"] = active
    errors.raise_if_any()
    if changes:
        await Benefit.filter(id=benefit.id).update(**changes)
    return await Benefit.get(id=benefit.id)


async def get_benefit(*, code: str) -> Benefit:
    benefit = await Benefit.get_or_none(code=code)
    if benefit is None:
        raise BenefitNotFound(code)
    return benefit


async def catalog(*, include_inactive: bool = False) -> list[Benefit]:
    query = Benefit.all() if include_inactive else Benefit.filter(active=True)
    return list(await query.order_by("code"))


# --- entitlements -----------------------------------------------------------------------------


async def set_entitlement(
    *,
    tier_code: str,
    benefit_code: str,
    period: QuotaPeriod = QuotaPeriod.UNLIMITED,
    quota: int | None = None,
    excluded: bool = False,
) -> TierEntitlement:
    """Grant a benefit to a tier (and, by inheritance, to every higher tier that does not
    override it), or with ``excluded`` withdraw an inherited one. Upserts on (tier, benefit)."""
    tier = await tiers.get_tier(code=tier_code)
    benefit = await get_benefit(code=benefit_code)
    if excluded:
        period, quota = QuotaPeriod.UNLIMITED, None
    elif period is QuotaPeriod.UNLIMITED:
        if quota is not None:
            raise ValidationError(FieldError("input.quota", "an unlimited benefit has no quota"))
    elif quota is None or not 1 <= quota <= MAX_QUOTA:
        raise ValidationError(
            FieldError("input.quota", f"a {period.value} quota must be 1–{MAX_QUOTA}", "REQUIRED")
        )
    async with in_transaction() as conn:
        updated = (
            await TierEntitlement.filter(tier_id=tier.id, benefit_id=benefit.id)
            .using_db(conn)
            .update(period=period, quota=quota, excluded=excluded)
        )
        if not updated:
            await TierEntitlement.bulk_create(
                [
                    TierEntitlement(
                        tier_id=tier.id,
                        benefit_id=benefit.id,
                        period=period,
                        quota=quota,
                        excluded=excluded,
                    )
                ],
                ignore_conflicts=True,
                using_db=conn,
            )
    return await TierEntitlement.get(tier_id=tier.id, benefit_id=benefit.id)


async def remove_entitlement(*, tier_code: str, benefit_code: str) -> bool:
    """Remove a tier's own entitlement row (inherited ones then apply again)."""
    tier = await tiers.get_tier(code=tier_code)
    benefit = await get_benefit(code=benefit_code)
    deleted = await TierEntitlement.filter(tier_id=tier.id, benefit_id=benefit.id).delete()
    return bool(deleted)


@dataclass(frozen=True)
class Entitlement:
    """What a tier gets of one benefit; ``granted_by`` is the tier whose row applies."""

    benefit: Benefit
    period: QuotaPeriod
    quota: int | None
    granted_by: str


async def ladder_entitlements() -> dict[int, dict[int, Entitlement]]:
    """For every tier id, its effective entitlements by benefit id (with inheritance)."""
    ladder = await tiers.ladder()
    rows = await TierEntitlement.all()
    benefits = {b.id: b for b in await Benefit.filter(active=True)}
    by_tier: dict[int, list[TierEntitlement]] = {}
    for row in rows:
        by_tier.setdefault(row.tier_id, []).append(row)  # type: ignore[attr-defined]
    out: dict[int, dict[int, Entitlement]] = {}
    running: dict[int, Entitlement] = {}
    for tier in ladder:
        for row in by_tier.get(tier.id, []):
            benefit_id = row.benefit_id  # type: ignore[attr-defined]
            if row.excluded or benefit_id not in benefits:
                running.pop(benefit_id, None)
            else:
                running[benefit_id] = Entitlement(
                    benefits[benefit_id], QuotaPeriod(row.period), row.quota, tier.code
                )
        out[tier.id] = dict(running)
    return out


async def entitlements_of(*, tier: Tier) -> list[Entitlement]:
    found = (await ladder_entitlements()).get(tier.id, {})
    return sorted(found.values(), key=lambda e: e.benefit.code)


@dataclass(frozen=True)
class MemberBenefit:
    """A member's entitlement now: ``uses_left`` None when unlimited."""

    entitlement: Entitlement
    used: int
    uses_left: int | None
    renews_at: datetime | None


async def member_benefits(
    *, member_ids: Sequence[int], known: Mapping[int, tiers.Standing] | None = None
) -> dict[int, list[MemberBenefit]]:
    """Each member's benefits with uses left this period (a fixed number of statements).

    ``known``: the members' tier standings when the caller already read them."""
    now = clock.now()
    standings = dict(known) if known is not None else await tiers.standings(member_ids=member_ids)
    table = await ladder_entitlements()
    keys: set[str] = set()
    for st in standings.values():
        for ent in table.get(st.tier.id, {}).values():
            key = periods.period_key(ent.period, now)
            if key is not None:
                keys.add(key)
    counters: dict[tuple[int, int, str], int] = {}
    if keys:
        for row in await BenefitCounter.filter(
            member_id__in=list(member_ids), period_key__in=list(keys)
        ).values("member_id", "benefit_id", "period_key", "used"):
            counters[(row["member_id"], row["benefit_id"], row["period_key"])] = row["used"]
    out: dict[int, list[MemberBenefit]] = {mid: [] for mid in member_ids}
    for mid, st in standings.items():
        for ent in sorted(table.get(st.tier.id, {}).values(), key=lambda e: e.benefit.code):
            key = periods.period_key(ent.period, now)
            used = counters.get((mid, ent.benefit.id, key), 0) if key else 0
            left = None if ent.quota is None else max(0, ent.quota - used)
            out[mid].append(MemberBenefit(ent, used, left, periods.renews_at(ent.period, now)))
    return out


# --- claims -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimOutcome:
    """A claim or reservation; ``replayed`` when the idempotency key had already been used."""

    claim: BenefitClaim
    benefit: Benefit
    uses_left: int | None
    replayed: bool


async def claim(
    *, member_id: int, benefit_code: str, channel: str, idempotency_key: str
) -> ClaimOutcome:
    """Use one of the member's benefit uses now (a merged member's from its survivor).

    Idempotent on (``member_id`` as given, ``idempotency_key``), also after that member was
    merged. Raises NotEntitled, QuotaExhausted, WrongChannel, BenefitNotFound, MemberNotFound,
    MemberNotActive, IdempotencyConflict (same key, other benefit or channel), ValidationError.
    """
    return await _take(
        member_id=member_id,
        benefit_code=benefit_code,
        channel=channel,
        idempotency_key=idempotency_key,
        hold_seconds=None,
    )


async def reserve(
    *,
    member_id: int,
    benefit_code: str,
    channel: str,
    idempotency_key: str,
    hold_seconds: int = DEFAULT_HOLD_SECONDS,
    jobs: JobQueue | None = None,
) -> ClaimOutcome:
    """Hold one use for a checkout: :func:`confirm` binds it to an order, :func:`release` (or
    the timeout job after ``hold_seconds``) gives it back. Same errors as :func:`claim`."""
    if not 1 <= hold_seconds <= MAX_HOLD_SECONDS:
        raise ValidationError(
            FieldError("input.holdSeconds", f"must be 1–{MAX_HOLD_SECONDS} seconds")
        )
    outcome = await _take(
        member_id=member_id,
        benefit_code=benefit_code,
        channel=channel,
        idempotency_key=idempotency_key,
        hold_seconds=hold_seconds,
    )
    if jobs is not None and not outcome.replayed:
        claim_id = outcome.claim.id
        jobs.defer(
            "benefits_release_reservation",
            claim_id,
            job_id=f"benefits:release:{claim_id}",
            defer_by=hold_seconds + 1,
        )
    return outcome


@db.retry_conflicts
async def _take(
    *,
    member_id: int,
    benefit_code: str,
    channel: str,
    idempotency_key: str,
    hold_seconds: int | None,
) -> ClaimOutcome:
    errors = FieldErrors()
    key = idempotency_key.strip()
    if not key or len(key) > 64:
        errors.add("input.idempotencyKey", "1–64 characters", "REQUIRED" if not key else "INVALID")
    if channel not in {c.value for c in Channel}:
        errors.add("input.channel", f"unknown channel {channel!r}")
    errors.raise_if_any()
    # The key belongs to the member the caller named; the use is taken from that member, or
    # from its survivor when it was merged (where its earlier claims went too).
    key_member_id = member_id
    member = await members.get(member_id=member_id)
    if member.status != MemberStatus.ACTIVE:
        raise MemberNotActive(f"member {member.id} is {member.status}")
    member_id = member.id
    benefit = await Benefit.get_or_none(code=benefit_code, active=True)
    if benefit is None:
        raise BenefitNotFound(benefit_code)
    replay = await _replay(key_member_id, key, benefit, channel, hold_seconds)
    if replay is not None:
        return replay
    if benefit.channels and channel not in benefit.channels:
        raise WrongChannel(benefit_code=benefit.code, channel=channel, allowed=benefit.channels)
    standing = await tiers.standing(member_id=member_id)
    entitlement = (await ladder_entitlements()).get(standing.tier.id, {}).get(benefit.id)
    if entitlement is None:
        raise NotEntitled(benefit_code=benefit.code, tier_code=standing.tier.code)
    now = clock.now()
    period_key = periods.period_key(entitlement.period, now)
    uses_left: int | None = None
    try:
        async with in_transaction() as conn:
            # The member first (the ledger's lock order); a merge since the look-up above
            # leaves nothing to claim for.
            locked = await ledger.lock_member(conn, member_id)
            status = locked.status if locked.id == member_id else MemberStatus.MERGED
            if status != MemberStatus.ACTIVE:
                raise MemberNotActive(f"member {member_id} is {status}")
            if period_key is not None and entitlement.quota is not None:
                await BenefitCounter.bulk_create(
                    [BenefitCounter(member_id=member_id, benefit_id=benefit.id,
                                    period_key=period_key, used=0)],
                    ignore_conflicts=True,
                    using_db=conn,
                )  # fmt: skip
                counter = BenefitCounter.filter(
                    member_id=member_id, benefit_id=benefit.id, period_key=period_key
                ).using_db(conn)
                taken = await counter.filter(used__lt=entitlement.quota).update(used=F("used") + 1)
                if taken != 1:
                    raise QuotaExhausted(
                        benefit_code=benefit.code,
                        quota=entitlement.quota,
                        renews_at=periods.renews_at(entitlement.period, now),
                    )
                used: list[Any] = list(await counter.values_list("used", flat=True))
                uses_left = max(0, entitlement.quota - int(used[0]))
            row = await BenefitClaim.create(
                using_db=conn,
                member_id=member_id,
                benefit_id=benefit.id,
                channel=channel,
                idempotency_key=key,
                key_member_id=key_member_id,
                status=ClaimStatus.CLAIMED if hold_seconds is None else ClaimStatus.RESERVED,
                tier_code=standing.tier.code,
                period_key=period_key if entitlement.quota is not None else None,
                hold_until=now + timedelta(seconds=hold_seconds) if hold_seconds else None,
                created_at=now,
            )
    except (IntegrityError, QuotaExhausted):
        # The same key won concurrently: answer as its replay (its use was counted once). At
        # the last use the twin waits on the counter row, then finds it used up by the claim
        # it repeats: a refusal is checked against the key before it is raised.
        replay = await _replay(key_member_id, key, benefit, channel, hold_seconds)
        if replay is None:
            raise
        return replay
    return ClaimOutcome(row, benefit, uses_left, replayed=False)


async def _replay(
    key_member_id: int, key: str, benefit: Benefit, channel: str, hold_seconds: int | None
) -> ClaimOutcome | None:
    existing = await BenefitClaim.get_or_none(key_member_id=key_member_id, idempotency_key=key)
    if existing is None:
        return None
    same = (
        existing.benefit_id == benefit.id  # type: ignore[attr-defined]
        and existing.channel == channel
        and (existing.hold_until is None) == (hold_seconds is None)
    )
    if not same:
        raise IdempotencyConflict(
            "this idempotency key was used for another benefit, channel or operation"
        )
    return ClaimOutcome(existing, benefit, None, replayed=True)


async def get_claim(*, claim_id: int) -> BenefitClaim:
    row = await BenefitClaim.get_or_none(id=claim_id).prefetch_related("benefit")
    if row is None:
        raise ClaimNotFound(claim_id)
    return row


async def confirm(*, claim_id: int, order_ref: str) -> BenefitClaim:
    """Bind a live reservation to an order. Idempotent for the same order; raises
    ReservationNotActive when it was released, timed out or confirmed for another order."""
    order_ref = order_ref.strip()
    if not order_ref or len(order_ref) > 64:
        raise ValidationError(FieldError("input.orderRef", "1–64 characters"))
    now = clock.now()
    updated = await BenefitClaim.filter(
        id=claim_id, status=ClaimStatus.RESERVED, hold_until__gt=now
    ).update(status=ClaimStatus.CONFIRMED, order_ref=order_ref, confirmed_at=now)
    row = await get_claim(claim_id=claim_id)
    if updated == 1:
        return row
    if row.status == ClaimStatus.CONFIRMED and row.order_ref == order_ref:
        return row
    status = "EXPIRED" if row.status == ClaimStatus.RESERVED else str(row.status)
    raise ReservationNotActive(claim_id=claim_id, status=status)


async def release(*, claim_id: int, only_if_expired: bool = False) -> BenefitClaim:
    """Give a reserved use back (the counter goes down in the same transaction). Idempotent on a
    released reservation; raises ReservationNotActive for a confirmed one or a plain claim."""
    now = clock.now()
    async with in_transaction() as conn:
        query = BenefitClaim.filter(id=claim_id, status=ClaimStatus.RESERVED)
        if only_if_expired:
            query = query.filter(hold_until__lte=now)
        updated = await query.using_db(conn).update(status=ClaimStatus.RELEASED, released_at=now)
        row = await BenefitClaim.filter(id=claim_id).using_db(conn).first()
        if row is None:
            raise ClaimNotFound(claim_id)
        if updated == 1 and row.period_key is not None:
            await (
                BenefitCounter.filter(
                    member_id=row.member_id,  # type: ignore[attr-defined]
                    benefit_id=row.benefit_id,  # type: ignore[attr-defined]
                    period_key=row.period_key,
                    used__gt=0,
                )
                .using_db(conn)
                .update(used=F("used") - 1)
            )
    if updated == 1 or row.status == ClaimStatus.RELEASED:
        return await get_claim(claim_id=claim_id)
    if only_if_expired and row.status == ClaimStatus.RESERVED:
        return await get_claim(claim_id=claim_id)  # not due yet: the cron will come back
    raise ReservationNotActive(claim_id=claim_id, status=str(row.status))


async def release_expired(*, batch: int = 500) -> int:
    """Release every reservation past its hold time; returns how many were released."""
    released = 0
    while True:
        ids = (
            await BenefitClaim.filter(status=ClaimStatus.RESERVED, hold_until__lte=clock.now())
            .order_by("hold_until")
            .limit(batch)
            .values_list("id", flat=True)
        )
        if not ids:
            return released
        for claim_id in ids:
            try:
                row = await release(claim_id=int(str(claim_id)), only_if_expired=True)
            except ReservationNotActive:
                continue
            if row.status == ClaimStatus.RELEASED:
                released += 1
        if len(ids) < batch:
            return released


async def claims_of(*, member_id: int, limit: int = 50) -> list[BenefitClaim]:
    return list(
        await BenefitClaim.filter(member_id=member_id)
        .order_by("-created_at", "-id")
        .limit(limit)
        .prefetch_related("benefit")
    )


# --- demo -------------------------------------------------------------------------------------

DEFAULT_BENEFITS: tuple[tuple[str, str, BenefitKind, dict[str, Any], list[str]], ...] = (
    ("FREE_SHIP", "包邮", BenefitKind.FREE_SHIPPING, {"maxShippingFee": 2000},
     ["ONLINE_STORE", "WECHAT_MINIPROGRAM", "APP"]),
    ("BIRTHDAY", "生日礼", BenefitKind.BIRTHDAY_GIFT, {"points": 500}, []),
    ("DISCOUNT_5", "会员95折", BenefitKind.PERCENT_DISCOUNT, {"percent": 5}, []),
    ("DISCOUNT_10", "会员9折", BenefitKind.PERCENT_DISCOUNT, {"percent": 10}, []),
    ("PRIORITY", "专属客服", BenefitKind.PRIORITY_SERVICE, {"level": "VIP"}, []),
    ("EVENT", "会员活动", BenefitKind.EVENT_ACCESS, {"guests": 1}, []),
)  # fmt: skip

# (tier, benefit, period, quota, excluded)
DEFAULT_ENTITLEMENTS: tuple[tuple[str, str, QuotaPeriod, int | None, bool], ...] = (
    ("BASIC", "BIRTHDAY", QuotaPeriod.YEAR, 1, False),
    ("SILVER", "FREE_SHIP", QuotaPeriod.MONTH, 2, False),
    ("SILVER", "DISCOUNT_5", QuotaPeriod.UNLIMITED, None, False),
    ("GOLD", "FREE_SHIP", QuotaPeriod.MONTH, 5, False),
    ("GOLD", "EVENT", QuotaPeriod.YEAR, 2, False),
    ("DIAMOND", "FREE_SHIP", QuotaPeriod.UNLIMITED, None, False),
    ("DIAMOND", "DISCOUNT_5", QuotaPeriod.UNLIMITED, None, True),
    ("DIAMOND", "DISCOUNT_10", QuotaPeriod.UNLIMITED, None, False),
    ("DIAMOND", "PRIORITY", QuotaPeriod.UNLIMITED, None, False),
)


async def seed_default_benefits() -> list[Benefit]:
    """Demo catalog and entitlements on the default ladder (idempotent)."""
    await tiers.seed_default_ladder()
    existing = set(await Benefit.all().values_list("code", flat=True))
    for code, name, kind, cfg, channels in DEFAULT_BENEFITS:
        if code not in existing:
            await create_benefit(code=code, name=name, kind=kind, config=cfg, channels=channels)
    for tier_code, benefit_code, period, quota, excluded in DEFAULT_ENTITLEMENTS:
        await set_entitlement(
            tier_code=tier_code,
            benefit_code=benefit_code,
            period=period,
            quota=quota,
            excluded=excluded,
        )
    return await catalog()
