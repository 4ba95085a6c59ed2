"""The daily tier review: renew, downgrade, catch up upgrades, and send downgrade notices.

Selection is set-based (one statement per step computes every member's qualifying tier);
writes go per member in chunks, each a compare-and-set so a concurrent order upgrade wins.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import structlog
from tortoise.transactions import in_transaction

from loyalty import clock, db
from loyalty.events import service as events
from loyalty.events.models import Event
from loyalty.members.models import MemberStatus
from loyalty.points.service import ledger
from loyalty.tiers import metrics, service
from loyalty.tiers.models import ChangeReason, DowngradePolicy, MemberTier, Tier, TierReview
from loyalty.tiers.rules import TierRule

log = structlog.get_logger(__name__)

CHUNK = 500


@dataclass
class ReviewReport:
    """Counts of one review run (``moves`` maps ``FROM->TO`` to a count)."""

    renewed: int = 0
    downgraded: int = 0
    upgraded: int = 0
    notices: int = 0
    moves: dict[str, int] = field(default_factory=dict)


async def review() -> ReviewReport:
    """Run every step at ``clock.now()``. Idempotent for a given day: a second run finds nothing
    expired, nobody to upgrade, and notices already recorded (dedupe keys)."""
    report = ReviewReport()
    tiers = await service.ladder()
    if len(tiers) < 2:
        return report
    await _expired(tiers, report)
    await reevaluate(reason=ChangeReason.REVIEW, report=report)
    report.notices = await send_notices()
    log.info("tiers.review", **report.__dict__)
    return report


async def _expired(tiers: list[Tier], report: ReviewReport) -> None:
    """Members whose tier expired and who are not locked: renew when they still qualify,
    otherwise move them per policy (one down, or to what they qualify for)."""
    now = clock.now()
    rules = [TierRule.from_model(t) for t in tiers]
    policy = await service.get_policy()
    conn = metrics.connection_or_default(None)
    q = metrics.Sql(conn)
    measures = metrics.measures_of(rules, now)
    due = (
        "SELECT mt.member_id FROM member_tier mt "
        f"WHERE mt.expires_at <= {q.bind_ts(now)} "
        f"AND (mt.locked_until IS NULL OR mt.locked_until <= {q.bind_ts(now)})"
    )
    sql = (
        f"WITH v AS ({metrics.values_cte(q, measures, due)}) "
        f"SELECT mt.member_id, mt.tier_id, {metrics.qualifying_sql(q, rules, measures, now, 'v')} "
        "AS q FROM member_tier mt JOIN member m ON m.id = mt.member_id "
        "LEFT JOIN v ON v.member_id = mt.member_id "
        f"WHERE m.status = 'ACTIVE' AND mt.member_id IN ({due})"
    )
    rows = await q.rows(sql)
    ordinal_of = {t.id: i for i, t in enumerate(tiers)}
    renew: dict[int, list[int]] = defaultdict(list)
    moves: list[tuple[int, Tier, Tier]] = []
    for row in rows:
        current = ordinal_of.get(int(row["tier_id"]), 0)
        qualified = int(row["q"])
        if qualified == current:
            renew[current].append(int(row["member_id"]))
            continue
        if qualified < current and policy.downgrade_policy == DowngradePolicy.ONE_DOWN:
            qualified = max(qualified, current - 1)
        moves.append((int(row["member_id"]), tiers[current], tiers[qualified]))
    for ordinal, member_ids in renew.items():
        expiry = rules[ordinal].expiry_from(now)
        for offset in range(0, len(member_ids), CHUNK):
            report.renewed += await MemberTier.filter(
                member_id__in=member_ids[offset : offset + CHUNK],
                tier_id=tiers[ordinal].id,
                expires_at__lte=now,
            ).update(expires_at=expiry)
    await _apply(moves, ChangeReason.REVIEW, report)


async def _apply(
    moves: Sequence[tuple[int, Tier, Tier]], reason: ChangeReason, report: ReviewReport
) -> None:
    for offset in range(0, len(moves), CHUNK):
        async with in_transaction() as conn:
            for member_id, current, target in moves[offset : offset + CHUNK]:
                change = await service.move(
                    member_id=member_id,
                    expected=current,
                    target=target,
                    reason=reason,
                    actor=service.SYSTEM_ACTOR,
                    connection=conn,
                )
                if change is None:
                    continue
                key = f"{current.code}->{target.code}"
                report.moves[key] = report.moves.get(key, 0) + 1
                if target.rank > current.rank:
                    report.upgraded += 1
                else:
                    report.downgraded += 1


async def reevaluate(
    *, reason: ChangeReason = ChangeReason.RULE_CHANGE, report: ReviewReport | None = None
) -> ReviewReport:
    """Upgrade everyone whose activity qualifies for a higher tier than they hold (after a rule
    change, or points earned outside orders). Never downgrades."""
    report = report or ReviewReport()
    tiers = await service.ladder()
    if len(tiers) < 2:
        return report
    now = clock.now()
    rules = [TierRule.from_model(t) for t in tiers]
    q = metrics.Sql(metrics.connection_or_default(None))
    measures = metrics.measures_of(rules, now)
    current = " ".join(f"WHEN {q.bind(t.id)} THEN {i}" for i, t in enumerate(tiers))
    sql = (
        f"WITH v AS ({metrics.values_cte(q, measures, None)}) "
        "SELECT x.member_id, x.cur, x.q FROM ("
        f"SELECT m.id AS member_id, CASE mt.tier_id {current} ELSE 0 END AS cur, "
        f"{metrics.qualifying_sql(q, rules, measures, now, 'v')} AS q "
        "FROM member m JOIN v ON v.member_id = m.id "
        "LEFT JOIN member_tier mt ON mt.member_id = m.id "
        "WHERE m.status = 'ACTIVE') x WHERE x.q > x.cur"
    )
    rows = await q.rows(sql)
    moves = [(int(r["member_id"]), tiers[int(r["cur"])], tiers[int(r["q"])]) for r in rows]
    await _apply(moves, reason, report)
    return report


async def send_notices(*, member_ids: Sequence[int] | None = None) -> int:
    """Record a ``tier.downgrade_notice`` event for members whose tier expires within the
    policy's notice days and who, at the current pace, would not keep it. The payload says
    what is needed: ``needed`` more (metric unit) by ``expires_at``. One notice per member and
    expiry date (dedupe key)."""
    policy = await service.get_policy()
    if policy.notice_days <= 0:
        return 0
    tiers = await service.ladder()
    now = clock.now()
    horizon = now + timedelta(days=policy.notice_days)
    by_id = {t.id: (i, t) for i, t in enumerate(tiers)}
    candidates = MemberTier.filter(
        expires_at__gt=now, expires_at__lte=horizon, member__status="ACTIVE"
    )
    if member_ids is not None:
        candidates = candidates.filter(member_id__in=list(member_ids))
    rows = await candidates.values("member_id", "tier_id", "expires_at", "locked_until")
    groups: dict[int, dict[int, datetime]] = defaultdict(dict)
    expiry: dict[int, datetime] = {}
    for row in rows:
        if row["tier_id"] not in by_id or by_id[row["tier_id"]][0] == 0:
            continue
        if row["locked_until"] is not None and row["locked_until"] >= row["expires_at"]:
            continue
        rule = TierRule.from_model(by_id[row["tier_id"]][1])
        groups[row["tier_id"]][row["member_id"]] = rule.window_start(row["expires_at"])
        expiry[row["member_id"]] = row["expires_at"]
    sent = 0
    for tier_id, bounds in groups.items():
        ordinal, tier = by_id[tier_id]
        lower = tiers[ordinal - 1]
        sums = await metrics.sums_since(metric=tier.metric, bounds=bounds)  # type: ignore[arg-type]
        if not sums:
            continue
        async with in_transaction() as conn:
            for member_id, so_far in sums.items():
                if so_far >= tier.threshold:
                    continue
                expires_at = expiry[member_id]
                local_day = expires_at.astimezone(clock.business_zone()).date()
                key = f"tier.downgrade_notice:{member_id}:{local_day.isoformat()}"
                if await Event.filter(dedupe_key=key).using_db(conn).exists():
                    continue
                await events.record(
                    kind="tier.downgrade_notice",
                    dedupe_key=key,
                    member_id=member_id,
                    payload={
                        "tier": tier.code,
                        "tier_name": tier.name,
                        "expires_at": expires_at.isoformat(),
                        "keep_by": local_day.isoformat(),
                        "metric": str(tier.metric),
                        "threshold": tier.threshold,
                        "counted": so_far,
                        "needed": tier.threshold - so_far,
                        "policy": str(policy.downgrade_policy),
                        "downgrade_to": lower.code,
                    },
                    connection=conn,
                )
                sent += 1
    return sent


# --- the review of one member for one business date (the fanned-out run) --------------------

KEPT = "kept"
ALREADY_REVIEWED = "already_reviewed"


async def active_member_ids() -> list[int]:
    """Every ACTIVE member, ascending: the selection of a tier review run."""
    from loyalty.members.models import Member

    rows = (
        await Member.filter(status=MemberStatus.ACTIVE).order_by("id").values_list("id", flat=True)
    )
    return [int(r) for r in rows]  # type: ignore[call-overload]


@dataclass
class ChunkReview:
    """A chunk of a review run: every member's qualifying tier from one statement, then each
    member reviewed in a transaction of its own (:func:`review_member`)."""

    business_date: date
    run_id: int | None
    tiers: list[Tier]
    qualified: dict[int, int]
    downgrade_policy: DowngradePolicy

    @classmethod
    async def prepare(
        cls, member_ids: Sequence[int], *, business_date: date, run_id: int | None
    ) -> ChunkReview:
        tiers = await service.ladder()
        policy = await service.get_policy()
        qualified: dict[int, int] = {}
        if len(tiers) >= 2 and member_ids:
            now = clock.now()
            rules = [TierRule.from_model(t) for t in tiers]
            q = metrics.Sql(metrics.connection_or_default(None))
            measures = metrics.measures_of(rules, now)
            lo, hi = min(member_ids), max(member_ids)
            span = f"SELECT id FROM member WHERE id BETWEEN {q.bind(lo)} AND {q.bind(hi)}"
            sql = (
                f"WITH v AS ({metrics.values_cte(q, measures, span)}) "
                f"SELECT v.member_id, {metrics.qualifying_sql(q, rules, measures, now, 'v')} AS q "
                "FROM v"
            )
            wanted = set(member_ids)
            for row in await q.rows(sql):
                if int(row["member_id"]) in wanted:
                    qualified[int(row["member_id"])] = int(row["q"])
        return cls(business_date, run_id, tiers, qualified, policy.downgrade_policy)

    async def member(self, member_id: int) -> str:
        if len(self.tiers) < 2:
            return KEPT
        return await review_member(
            member_id=member_id,
            business_date=self.business_date,
            qualified=self.qualified.get(member_id, 0),
            tiers=self.tiers,
            downgrade_policy=self.downgrade_policy,
            run_id=self.run_id,
        )

    async def finish(self, outcomes: dict[int, str]) -> dict[str, int]:
        reviewed = [m for m, outcome in outcomes.items() if outcome != "failed"]
        notices = await send_notices(member_ids=reviewed) if reviewed else 0
        return {"notices": notices} if notices else {}


@db.retry_conflicts
async def review_member(
    *,
    member_id: int,
    business_date: date,
    qualified: int,
    tiers: Sequence[Tier],
    downgrade_policy: DowngradePolicy,
    run_id: int | None = None,
) -> str:
    """Review one member for ``business_date``: renew an expired tier the member still
    qualifies for, move an expired one per policy, or upgrade to ``qualified`` (the ordinal
    of the highest tier the member's activity qualifies for). Returns ``renewed``,
    ``downgraded``, ``upgraded``, ``kept`` (nothing to do) or ``already_reviewed``.

    Idempotent per member and date: a review that changed something writes a
    :class:`TierReview` in its transaction, and a second review for the date finds it. Takes
    the member row lock first (the ledger's lock order), then the tier row.
    """
    async with in_transaction() as conn:
        member = await ledger.lock_member(conn, member_id)
        if member.id != member_id or member.status is not MemberStatus.ACTIVE:
            return KEPT
        done = (
            await TierReview.filter(member_id=member_id, business_date=business_date)
            .using_db(conn)
            .first()
        )
        if done is not None:
            same_run = run_id is not None and done.run_id == run_id
            return done.outcome if same_run else ALREADY_REVIEWED
        now = clock.now()
        row = await MemberTier.filter(member_id=member_id).using_db(conn).first()
        ordinal_of = {t.id: i for i, t in enumerate(tiers)}
        current = ordinal_of.get(row.tier_id, 0) if row is not None else 0  # type: ignore[attr-defined]
        locked = row is not None and row.locked_until is not None and row.locked_until > now
        expired = (
            row is not None and row.expires_at is not None and row.expires_at <= now and not locked
        )
        target = current
        if expired:
            target = qualified
            if qualified < current and downgrade_policy == DowngradePolicy.ONE_DOWN:
                target = max(qualified, current - 1)
        elif qualified > current:
            target = qualified
        if expired and target == current:
            renewed = (
                await MemberTier.filter(
                    member_id=member_id, tier_id=tiers[current].id, expires_at__lte=now
                )
                .using_db(conn)
                .update(expires_at=TierRule.from_model(tiers[current]).expiry_from(now))
            )
            outcome = "renewed" if renewed else KEPT
        elif target != current:
            change = await service.move(
                member_id=member_id,
                expected=tiers[current],
                target=tiers[target],
                reason=ChangeReason.REVIEW,
                actor=service.SYSTEM_ACTOR,
                connection=conn,
            )
            outcome = KEPT if change is None else "upgraded" if target > current else "downgraded"
        else:
            outcome = KEPT
        if outcome != KEPT:
            await TierReview.create(
                member_id=member_id,
                business_date=business_date,
                outcome=outcome,
                run_id=run_id,
                at=now,
                using_db=conn,
            )
        return outcome
