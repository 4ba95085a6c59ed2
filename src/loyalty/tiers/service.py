"""Tiers: the ladder as data, members' standing, upgrades, manual assignment and progress.

Every public function owns its transaction unless it takes a ``connection`` (then it runs in
the caller's: the order hook upgrades inside the order's transaction).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from loyalty import clock, request_cache
from loyalty.audit import service as audit
from loyalty.auth.principal import Principal
from loyalty.errors import FieldError, FieldErrors, ValidationError
from loyalty.events import service as events
from loyalty.jobs import JobQueue
from loyalty.members.errors import MemberNotActive, MemberNotFound
from loyalty.members.models import Member, MemberStatus
from loyalty.tiers import metrics
from loyalty.tiers.errors import TierNotFound
from loyalty.tiers.models import (
    ChangeReason,
    DowngradePolicy,
    MemberTier,
    Metric,
    Tier,
    TierChange,
    TierPolicy,
    Window,
)
from loyalty.tiers.rules import TierRule, check_ladder, check_rule

SYSTEM_ACTOR = "system"


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


# --- the ladder -------------------------------------------------------------------------------


LADDER_KEY = "tiers.ladder"


async def ladder(*, connection: BaseDBAsyncClient | None = None) -> list[Tier]:
    """Every tier, lowest rank first (the first is the entry tier)."""
    if connection is not None:
        return list(await Tier.all().using_db(connection).order_by("rank"))
    return list(await request_cache.memo(LADDER_KEY, lambda: Tier.all().order_by("rank")))


async def get_tier(*, code: str) -> Tier:
    tier = await Tier.get_or_none(code=code)
    if tier is None:
        raise TierNotFound(code)
    return tier


async def create_tier(
    *,
    code: str,
    name: str,
    rank: int,
    metric: Metric = Metric.SPEND,
    threshold: int = 0,
    window: Window = Window.ROLLING_DAYS,
    window_days: int | None = 365,
    retention_days: int | None = 365,
    multiplier_permille: int = 1000,
    description: str = "",
    jobs: JobQueue | None = None,
) -> Tier:
    """Add a rung. Raises :class:`ValidationError` (negative threshold, duplicate code or rank,
    thresholds not rising with rank, …). Members who now qualify are upgraded by a job."""
    rule = TierRule(
        code=code.strip().upper(),
        name=name.strip(),
        rank=rank,
        metric=metric,
        threshold=threshold,
        window=window,
        window_days=None if Window(window) is Window.CALENDAR_YEAR else window_days,
        retention_days=retention_days,
        multiplier_permille=multiplier_permille,
        description=description,
    )
    await _check_against_ladder(rule, replacing=None)
    try:
        async with in_transaction() as conn:
            tier = await Tier.create(using_db=conn, **_columns(rule))
            await _request_reevaluation(conn)
            request_cache.forget(LADDER_KEY)
    except IntegrityError as exc:
        raise ValidationError(
            FieldError("input.code", "a tier with this code or rank exists", "DUPLICATE")
        ) from exc
    _reevaluate_later(jobs)
    return tier


async def update_tier(
    *,
    code: str,
    name: Any = UNSET,
    rank: Any = UNSET,
    metric: Any = UNSET,
    threshold: Any = UNSET,
    window: Any = UNSET,
    window_days: Any = UNSET,
    retention_days: Any = UNSET,
    multiplier_permille: Any = UNSET,
    description: Any = UNSET,
    jobs: JobQueue | None = None,
) -> Tier:
    """Change a rung (unset arguments keep their value; ``None`` clears a nullable one)."""
    tier = await get_tier(code=code)
    changes = {
        k: v
        for k, v in {
            "name": name,
            "rank": rank,
            "metric": metric,
            "threshold": threshold,
            "window": window,
            "window_days": window_days,
            "retention_days": retention_days,
            "multiplier_permille": multiplier_permille,
            "description": description,
        }.items()
        if v is not UNSET
    }
    for required in ("name", "rank", "metric", "threshold", "window", "multiplier_permille"):
        if required in changes and changes[required] is None:
            raise ValidationError(FieldError(f"input.{_camel(required)}", "must not be null"))
    current = TierRule.from_model(tier)
    values = {**current.__dict__, **changes}
    if values["window"] is Window.CALENDAR_YEAR:
        values["window_days"] = None
    rule = TierRule(**values)
    await _check_against_ladder(rule, replacing=tier.code)
    try:
        async with in_transaction() as conn:
            await Tier.filter(id=tier.id).using_db(conn).update(**_columns(rule))
            await _request_reevaluation(conn)
            request_cache.forget(LADDER_KEY)
    except IntegrityError as exc:
        raise ValidationError(
            FieldError("input.rank", "another tier has this rank", "DUPLICATE")
        ) from exc
    _reevaluate_later(jobs)
    return await Tier.get(id=tier.id)


async def _check_against_ladder(rule: TierRule, *, replacing: str | None) -> None:
    errors = FieldErrors()
    check_rule(rule, errors, "input")
    errors.raise_if_any()
    others = [TierRule.from_model(t) for t in await ladder() if t.code != replacing]
    check_ladder([*others, rule], errors, "input", indexed=False)
    errors.raise_if_any()


def _columns(rule: TierRule) -> dict[str, Any]:
    return dict(rule.__dict__)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


# Job id of the re-evaluation after a ladder change. One pending run at a time is enough (it
# reads the ladder when it starts), so every change asks under this one key.
REEVALUATE_KEY = "tiers:reevaluate"


async def _request_reevaluation(conn: BaseDBAsyncClient) -> None:
    """Record, with the ladder change, that members must be re-evaluated: the reconciler
    sends the job again if it is lost between the commit and Redis."""
    await events.request_job(function="tiers_reevaluate", key=REEVALUATE_KEY, connection=conn)


def _reevaluate_later(jobs: JobQueue | None) -> None:
    if jobs is not None:
        events.send_job_later(jobs, function="tiers_reevaluate", key=REEVALUATE_KEY)


DEFAULT_LADDER: tuple[TierRule, ...] = (
    TierRule("BASIC", "普通", 0, threshold=0, retention_days=None, description="入会即享"),
    TierRule("SILVER", "银卡", 10, threshold=200_000, multiplier_permille=1200,
             description="近365天消费满¥2,000"),
    TierRule("GOLD", "金卡", 20, threshold=800_000, multiplier_permille=1500,
             description="近365天消费满¥8,000"),
    TierRule("DIAMOND", "钻石", 30, threshold=2_000_000, multiplier_permille=2000,
             description="近365天消费满¥20,000"),
)  # fmt: skip


async def seed_default_ladder() -> list[Tier]:
    """Create the demo ladder (普通 / 银卡 / 金卡 / 钻石 on spend over a rolling 365 days,
    retention 365 days). Idempotent: existing codes are left as they are."""
    async with in_transaction() as conn:
        existing = set(await Tier.all().using_db(conn).values_list("code", flat=True))
        for rule in DEFAULT_LADDER:
            if rule.code not in existing:
                await Tier.create(using_db=conn, **_columns(rule))
                request_cache.forget(LADDER_KEY)
    await get_policy()
    return await ladder()


# --- policy -----------------------------------------------------------------------------------


async def get_policy(*, connection: BaseDBAsyncClient | None = None) -> TierPolicy:
    """The program's tier policy (created with defaults on first use)."""
    policy = await TierPolicy.filter(id=1).using_db(connection).first()
    if policy is None:
        await TierPolicy.bulk_create([TierPolicy(id=1)], ignore_conflicts=True, using_db=connection)
        policy = await TierPolicy.filter(id=1).using_db(connection).first()
    assert policy is not None
    return policy


async def set_policy(
    *, downgrade_policy: DowngradePolicy | None = None, notice_days: int | None = None
) -> TierPolicy:
    if notice_days is not None and not 0 <= notice_days <= 365:
        raise ValidationError(FieldError("input.noticeDays", "must be 0–365 (0: no notices)"))
    policy = await get_policy()
    changes: dict[str, Any] = {}
    if downgrade_policy is not None:
        changes["downgrade_policy"] = downgrade_policy
    if notice_days is not None:
        changes["notice_days"] = notice_days
    if changes:
        await TierPolicy.filter(id=policy.id).update(**changes)
    return await get_policy()


# --- standing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Standing:
    """A member's tier now. ``row`` is None for a member still at the entry tier by default."""

    member_id: int
    tier: Tier
    row: MemberTier | None

    @property
    def since(self) -> datetime | None:
        return self.row.since if self.row else None

    @property
    def expires_at(self) -> datetime | None:
        return self.row.expires_at if self.row else None

    @property
    def locked_until(self) -> datetime | None:
        return self.row.locked_until if self.row else None


async def standings(
    *, member_ids: Sequence[int], connection: BaseDBAsyncClient | None = None
) -> dict[int, Standing]:
    """Each member's standing (members are absent only when no ladder is defined)."""
    tiers = await ladder(connection=connection)
    if not tiers:
        return {}
    by_id = {t.id: t for t in tiers}
    rows = await MemberTier.filter(member_id__in=list(member_ids)).using_db(connection)
    found = {r.member_id: r for r in rows}  # type: ignore[attr-defined]
    out: dict[int, Standing] = {}
    for mid in member_ids:
        row = found.get(mid)
        tier = by_id.get(row.tier_id) if row else tiers[0]  # type: ignore[attr-defined]
        out[mid] = Standing(mid, tier or tiers[0], row)
    return out


async def standing(*, member_id: int, connection: BaseDBAsyncClient | None = None) -> Standing:
    found = await standings(member_ids=[member_id], connection=connection)
    if member_id not in found:
        raise TierNotFound("entry tier")
    return found[member_id]


async def multiplier(*, member_id: int, connection: BaseDBAsyncClient | None = None) -> int:
    """The member's tier points multiplier, per-mille (1000 when no ladder is defined)."""
    found = await standings(member_ids=[member_id], connection=connection)
    return found[member_id].tier.multiplier_permille if member_id in found else 1000


async def history(*, member_ids: Sequence[int], limit: int = 50) -> dict[int, list[TierChange]]:
    """Latest changes first, at most ``limit`` per member."""
    rows = (
        await TierChange.filter(member_id__in=list(member_ids))
        .order_by("-at", "-id")
        .limit(limit * max(1, len(member_ids)))
    )
    out: dict[int, list[TierChange]] = {mid: [] for mid in member_ids}
    for row in rows:
        group = out.setdefault(row.member_id, [])  # type: ignore[attr-defined]
        if len(group) < limit:
            group.append(row)
    return out


# --- moving a member --------------------------------------------------------------------------


async def move(
    *,
    member_id: int,
    expected: Tier,
    target: Tier,
    reason: ChangeReason,
    actor: str,
    connection: BaseDBAsyncClient,
    expires_at: Any = UNSET,
    locked_until: datetime | None = None,
    order_id: int | None = None,
    metric_value: int | None = None,
    note: str | None = None,
) -> TierChange | None:
    """Move the member from ``expected`` to ``target`` inside the caller's transaction.

    Compare-and-set on the member's row: returns None (no write) when the member is no longer
    at ``expected`` (a concurrent change won). ``expires_at`` defaults to now + the target's
    retention.
    """
    now = clock.now()
    if expires_at is UNSET:
        expires_at = TierRule.from_model(target).expiry_from(now)
    await MemberTier.bulk_create(
        [MemberTier(member_id=member_id, tier_id=expected.id, since=now)],
        ignore_conflicts=True,
        using_db=connection,
    )
    updated = (
        await MemberTier.filter(member_id=member_id, tier_id=expected.id)
        .using_db(connection)
        .update(tier_id=target.id, since=now, expires_at=expires_at, locked_until=locked_until)
    )
    if updated != 1:
        return None
    change = await TierChange.create(
        using_db=connection,
        member_id=member_id,
        from_code=expected.code,
        to_code=target.code,
        reason=reason,
        actor=actor,
        order_id=order_id,
        metric_value=metric_value,
        note=note,
        at=now,
    )
    await events.record(
        kind="tier.changed",
        dedupe_key=f"tier.changed:{change.id}",
        member_id=member_id,
        payload={
            "from": expected.code,
            "to": target.code,
            "reason": reason.value,
            "direction": "UP" if target.rank > expected.rank else "DOWN",
            "expires_at": expires_at.isoformat() if expires_at else None,
        },
        connection=connection,
    )
    return change


async def upgrade_if_qualified(
    *,
    member_id: int,
    connection: BaseDBAsyncClient,
    reason: ChangeReason = ChangeReason.ORDER,
    actor: str = SYSTEM_ACTOR,
    order_id: int | None = None,
) -> TierChange | None:
    """Upgrade the member at once if the ladder says a higher tier (never downgrades).

    Runs in the caller's transaction so the qualifying order and the upgrade commit together.
    """
    tiers = await ladder(connection=connection)
    if len(tiers) < 2:
        return None
    for _attempt in range(3):
        # A locked manual tier moves up too when the member earns a higher one.
        current = (await standings(member_ids=[member_id], connection=connection))[member_id]
        rules = [TierRule.from_model(t) for t in tiers]
        now = clock.now()
        values = (
            await metrics.measure(
                ladder=rules, member_ids=[member_id], at=now, connection=connection
            )
        )[member_id]
        ordinal = metrics.qualifying_ordinal(rules, values, now)
        target = tiers[ordinal]
        if target.rank <= current.tier.rank:
            return None
        rule = rules[ordinal]
        change = await move(
            member_id=member_id,
            expected=current.tier,
            target=target,
            reason=reason,
            actor=actor,
            connection=connection,
            order_id=order_id,
            metric_value=values[metrics.Measure(rule.metric, rule.window_start(now))],
        )
        if change is not None:
            return change
    return None


async def assign(
    *,
    member_id: int,
    tier_code: str,
    actor: Principal,
    locked_until: datetime | None = None,
    note: str | None = None,
) -> Standing:
    """Put a member on a tier by hand (VIP invitation), optionally locked until a date.

    A lock keeps the tier through reviews until it ends; the tier then expires no earlier than
    the lock. Raises MemberNotFound, MemberNotActive, TierNotFound, ValidationError.
    """
    now = clock.now()
    if locked_until is not None and locked_until <= now:
        raise ValidationError(FieldError("input.lockedUntil", "must be in the future"))
    if note is not None and len(note) > 255:
        raise ValidationError(FieldError("input.note", "at most 255 characters", "TOO_LONG"))
    member = await Member.get_or_none(id=member_id)
    if member is None:
        raise MemberNotFound(member_id)
    if member.status != MemberStatus.ACTIVE:
        raise MemberNotActive(f"member {member_id} is {member.status}")
    target = await get_tier(code=tier_code)
    expiry = TierRule.from_model(target).expiry_from(now)
    if expiry is not None and locked_until is not None:
        expiry = max(expiry, locked_until)
    async with in_transaction() as conn:
        for _attempt in range(3):
            current = await standing(member_id=member_id, connection=conn)
            if current.tier.id == target.id:
                await (
                    MemberTier.filter(member_id=member_id)
                    .using_db(conn)
                    .update(locked_until=locked_until, expires_at=expiry)
                )
                await TierChange.create(
                    using_db=conn, member_id=member_id, from_code=current.tier.code,
                    to_code=target.code, reason=ChangeReason.ADMIN, actor=actor.subject,
                    note=note, at=now,
                )  # fmt: skip
                break
            change = await move(
                member_id=member_id,
                expected=current.tier,
                target=target,
                reason=ChangeReason.ADMIN,
                actor=actor.subject,
                connection=conn,
                expires_at=expiry,
                locked_until=locked_until,
                note=note,
            )
            if change is not None:
                break
        await audit.record(
            actor=actor,
            action="tier.assign",
            target_type="Member",
            target_id=member_id,
            details={"tier": target.code, "locked": locked_until is not None},
            connection=conn,
        )
    return await standing(member_id=member_id)


# --- progress ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    """Where a member stands against the ladder. Amounts in the metric's unit."""

    tier: Tier
    next_tier: Tier | None
    metric: Metric
    value: int
    to_next: int | None
    retain_metric: Metric | None
    retain_needed: int | None
    retain_by: datetime | None


async def progress(
    *, member_ids: Sequence[int], known: Mapping[int, Standing] | None = None
) -> dict[int, Progress]:
    """Progress for many members in a fixed number of statements (one per distinct metric).

    ``known``: the members' standings when the caller already read them."""
    tiers = await ladder()
    if not tiers:
        return {}
    now = clock.now()
    rules = [TierRule.from_model(t) for t in tiers]
    found = dict(known) if known is not None else await standings(member_ids=member_ids)
    values = await metrics.measure(ladder=rules, member_ids=member_ids, at=now)
    ordinal_of = {t.id: i for i, t in enumerate(tiers)}
    # Retaining: what counts towards the current tier's window as it will stand at expiry.
    bounds: dict[Metric, dict[int, datetime]] = {}
    for mid, st in found.items():
        i = ordinal_of[st.tier.id]
        if i > 0 and st.expires_at is not None:
            bounds.setdefault(rules[i].metric, {})[mid] = rules[i].window_start(st.expires_at)
    retained: dict[int, int] = {}
    for metric, per_member in bounds.items():
        retained.update(await metrics.sums_since(metric=metric, bounds=per_member))
    out: dict[int, Progress] = {}
    for mid, st in found.items():
        i = ordinal_of[st.tier.id]
        nxt = i + 1 if i + 1 < len(tiers) else None
        shown = rules[nxt] if nxt is not None else rules[i]
        value = values[mid][metrics.Measure(shown.metric, shown.window_start(now))]
        needed = by = None
        if mid in retained:
            needed = max(0, rules[i].threshold - retained[mid])
            by = st.expires_at
        out[mid] = Progress(
            tier=st.tier,
            next_tier=tiers[nxt] if nxt is not None else None,
            metric=shown.metric,
            value=value,
            to_next=max(0, shown.threshold - value) if nxt is not None else None,
            retain_metric=rules[i].metric if mid in retained else None,
            retain_needed=needed,
            retain_by=by,
        )
    return out
