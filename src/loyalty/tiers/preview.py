"""What-if: how a proposed ladder would move today's members, computed in one SQL statement.

Each active member is placed on the proposed tier their current activity qualifies for and
compared with the tier they hold now (a recalculation as of now). A member's current tier is
located in the proposed ladder by code, else by rank. Locked manual tiers do not move down.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from loyalty import clock
from loyalty.errors import FieldErrors
from loyalty.tiers import metrics, service
from loyalty.tiers.rules import TierRule, check_ladder


@dataclass
class CurrentTierMoves:
    """Members holding one current tier, and where the proposal would take them."""

    code: str
    name: str
    members: int = 0
    up: int = 0
    down: int = 0
    stay: int = 0


@dataclass
class ProposedTierCount:
    code: str
    name: str
    members: int = 0


@dataclass
class Preview:
    current: list[CurrentTierMoves]
    proposed: list[ProposedTierCount]
    up: int = 0
    down: int = 0
    stay: int = 0


async def preview(*, rules: Sequence[TierRule]) -> Preview:
    """Counts of members moving up, down or staying per current tier, and per proposed tier.

    Raises :class:`ValidationError` (paths ``rules[i].field``) for an invalid proposal.
    """
    errors = FieldErrors()
    check_ladder(list(rules), errors, "rules")
    errors.raise_if_any()
    proposed = sorted(rules, key=lambda r: r.rank)
    tiers = await service.ladder()
    now = clock.now()

    def locate(code: str, rank: int) -> int:
        for i, rule in enumerate(proposed):
            if rule.code == code:
                return i
        below = [i for i, rule in enumerate(proposed) if rule.rank <= rank]
        return below[-1] if below else 0

    q = metrics.Sql(metrics.connection_or_default(None))
    measures = metrics.measures_of(proposed, now)
    entry_id = tiers[0].id if tiers else None
    current = f"COALESCE(mt.tier_id, {q.bind(entry_id)})" if entry_id is not None else "mt.tier_id"
    sql = (
        f"WITH v AS ({metrics.values_cte(q, measures, None)}) "
        "SELECT x.cur, x.q, x.locked, COUNT(*) AS n FROM ("
        f"SELECT {current} AS cur, "
        f"{metrics.qualifying_sql(q, proposed, measures, now, 'v')} AS q, "
        f"CASE WHEN mt.locked_until IS NOT NULL AND mt.locked_until > {q.bind_ts(now)} "
        "THEN 1 ELSE 0 END AS locked "
        "FROM member m LEFT JOIN member_tier mt ON mt.member_id = m.id "
        "LEFT JOIN v ON v.member_id = m.id WHERE m.status = 'ACTIVE'"
        ") x GROUP BY x.cur, x.q, x.locked"
    )
    rows = await q.rows(sql)
    by_id = {t.id: t for t in tiers}
    moves = {t.id: CurrentTierMoves(t.code, t.name) for t in tiers}
    counts = [ProposedTierCount(r.code, r.name) for r in proposed]
    result = Preview(current=list(moves.values()), proposed=counts)
    for row in rows:
        cur_id, qualified, n = row["cur"], int(row["q"]), int(row["n"])
        tier = by_id.get(int(cur_id)) if cur_id is not None else None
        here = locate(tier.code, tier.rank) if tier is not None else 0
        if int(row["locked"]) and qualified < here:
            qualified = here
        counts[qualified].members += n
        if tier is None:
            continue
        bucket = moves[tier.id]
        bucket.members += n
        if qualified > here:
            bucket.up += n
            result.up += n
        elif qualified < here:
            bucket.down += n
            result.down += n
        else:
            bucket.stay += n
            result.stay += n
    return result
