"""The daily tier review: renew, downgrade, catch up upgrades, and send downgrade notices.

Selection is set-based (one statement per step computes every member's qualifying tier);
writes go per member in chunks, each a compare-and-set so a concurrent order upgrade wins.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from tortoise.transactions import in_transaction

from loyalty import clock
from loyalty.events import service as events
from loyalty.events.models import Event
from loyalty.tiers import metrics, service
from loyalty.tiers.models import ChangeReason, DowngradePolicy, MemberTier, Tier
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


async def send_notices() -> int:
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
    rows = await MemberTier.filter(
        expires_at__gt=now, expires_at__lte=horizon, member__status="ACTIVE"
    ).values("member_id", "tier_id", "expires_at", "locked_until")
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
