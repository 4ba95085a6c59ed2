"""tierProgress numbers, and the what-if preview against a brute-force count."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest

from loyalty.errors import ValidationError
from loyalty.members.models import MemberStatus
from loyalty.tiers import preview, service
from loyalty.tiers.models import Metric, Tier, Window
from loyalty.tiers.rules import TierRule
from tests.factories.members import create_member
from tests.factories.tiers import create_order, place_on_tier

pytestmark = pytest.mark.usefixtures("ladder")


async def test_progress_numbers(ladder: dict[str, Tier], now: datetime) -> None:
    member = await create_member()
    expires = now + timedelta(days=100)
    await place_on_tier(member.id, ladder["SILVER"], expires_in=timedelta(days=100))
    await create_order(member.id, 300_000, occurred_at=now - timedelta(days=300))
    await create_order(member.id, 100_000, occurred_at=now - timedelta(days=10))

    progress = (await service.progress(member_ids=[member.id]))[member.id]

    assert progress.tier.code == "SILVER"
    assert progress.next_tier is not None and progress.next_tier.code == "GOLD"
    assert progress.metric is Metric.SPEND
    assert progress.value == 400_000
    assert progress.to_next == 400_000
    # At expiry the window starts 265 days ago: only the 100,000 counts towards SILVER.
    assert progress.retain_needed == 100_000
    assert progress.retain_by == expires


async def test_progress_of_entry_and_top_tiers(ladder: dict[str, Tier]) -> None:
    newcomer, top = await create_member(), await create_member()
    await place_on_tier(top.id, ladder["DIAMOND"])
    await create_order(top.id, 2_500_000)

    found = await service.progress(member_ids=[newcomer.id, top.id])

    assert (found[newcomer.id].tier.code, found[newcomer.id].next_tier.code) == (  # type: ignore[union-attr]
        "BASIC",
        "SILVER",
    )
    assert found[newcomer.id].to_next == 200_000 and found[newcomer.id].retain_needed is None
    assert found[top.id].next_tier is None and found[top.id].to_next is None
    assert found[top.id].value == 2_500_000 and found[top.id].retain_needed == 0


PROPOSED = [
    TierRule("BASIC", "普通", 0, threshold=0, retention_days=None),
    TierRule("SILVER", "银卡", 10, threshold=150_000),
    # GOLD renamed: located by rank for members holding GOLD today.
    TierRule("GOLD_PLUS", "金卡+", 20, threshold=600_000, window_days=180),
    TierRule("FREQUENT", "常客", 25, metric=Metric.ORDERS, threshold=4,
             window=Window.CALENDAR_YEAR, window_days=None),
    TierRule("DIAMOND", "钻石", 30, threshold=2_500_000),
]  # fmt: skip


def brute_force(
    members: list[dict[str, object]], ladder: dict[str, Tier], now: datetime
) -> tuple[dict[str, tuple[int, int, int, int]], dict[str, int]]:
    """Per member in Python: the definition the SQL must match."""
    ordered = sorted(PROPOSED, key=lambda r: r.rank)
    by_rank = {t.code: t.rank for t in ladder.values()}

    def locate(code: str) -> int:
        for i, rule in enumerate(ordered):
            if rule.code == code:
                return i
        return max(i for i, rule in enumerate(ordered) if rule.rank <= by_rank[code])

    def value(rule: TierRule, orders: list[tuple[int, int, datetime]]) -> int:
        start = rule.window_start(now)
        kept = [(p, r) for p, r, at in orders if at >= start]
        if rule.metric is Metric.ORDERS:
            return sum(1 for p, r in kept if r < p or p == 0)
        return sum(p - r for p, r in kept)

    current: dict[str, list[int]] = {t.code: [0, 0, 0, 0] for t in ladder.values()}
    projected = {r.code: 0 for r in ordered}
    for m in members:
        if m["status"] != MemberStatus.ACTIVE:
            continue
        orders = m["orders"]  # type: ignore[assignment]
        q = 0
        for i in range(len(ordered) - 1, 0, -1):
            if value(ordered[i], orders) >= ordered[i].threshold:  # type: ignore[arg-type]
                q = i
                break
        here = locate(m["tier"])  # type: ignore[arg-type]
        if m["locked"] and q < here:
            q = here
        projected[ordered[q].code] += 1
        row = current[m["tier"]]  # type: ignore[index]
        row[0] += 1
        row[1 if q > here else 2 if q < here else 3] += 1
    return {k: tuple(v) for k, v in current.items()}, projected  # type: ignore[misc]


@pytest.mark.parametrize("seed", [7, 2026])
async def test_preview_matches_a_brute_force_count(
    seed: int, ladder: dict[str, Tier], now: datetime
) -> None:
    rng = random.Random(seed)
    members: list[dict[str, object]] = []
    for _ in range(40):
        status = rng.choice([MemberStatus.ACTIVE] * 9 + [MemberStatus.ERASED])
        member = await create_member(status=status)
        code = rng.choice(["BASIC", "BASIC", "SILVER", "GOLD", "DIAMOND"])
        locked = code != "BASIC" and rng.random() < 0.2
        if code != "BASIC" or rng.random() < 0.5:
            await place_on_tier(
                member.id,
                ladder[code],
                locked_until=now + timedelta(days=10) if locked else None,
            )
        orders = []
        for _ in range(rng.randint(0, 6)):
            paid = rng.choice([0, 20_000, 90_000, 150_000, 400_000, 1_200_000])
            refunded = rng.choice([0, 0, 0, paid // 2, paid])
            at = now - timedelta(days=rng.randint(0, 500), seconds=rng.randint(0, 86_399))
            await create_order(member.id, paid, refunded=refunded, occurred_at=at)
            orders.append((paid, refunded, at))
        members.append({"status": status, "tier": code, "locked": locked, "orders": orders})

    result = await preview.preview(rules=PROPOSED)

    expected_current, expected_projected = brute_force(members, ladder, now)
    assert {
        row.code: (row.members, row.up, row.down, row.stay) for row in result.current
    } == expected_current
    assert {row.code: row.members for row in result.proposed} == expected_projected
    assert result.up + result.down + result.stay == sum(expected_projected.values())
    assert result.up and result.down and result.stay  # the data exercises every direction


async def test_preview_writes_nothing(ladder: dict[str, Tier]) -> None:
    member = await create_member()
    await create_order(member.id, 5_000_000)
    result = await preview.preview(rules=PROPOSED)
    assert result.up == 1
    assert (await service.standing(member_id=member.id)).tier.code == "BASIC"


@pytest.mark.parametrize(
    ("rules", "field", "code"),
    [
        ([TierRule("BASIC", "b", 0), TierRule("SILVER", "s", 1, threshold=-1)],
         "rules[1].threshold", "NEGATIVE"),
        ([TierRule("BASIC", "b", 0), TierRule("SILVER", "s", 0, threshold=5)],
         "rules[1].rank", "DUPLICATE"),
        ([TierRule("BASIC", "b", 0), TierRule("BASIC", "s", 1, threshold=5)],
         "rules[1].code", "DUPLICATE"),
        ([TierRule("BASIC", "b", 0, threshold=10)], "rules[0].threshold", "INVALID"),
        ([TierRule("BASIC", "b", 0), TierRule("A", "a", 1, threshold=9),
          TierRule("B", "b", 2, threshold=9)], "rules[2].threshold", "NOT_ASCENDING"),
        ([TierRule("BASIC", "b", 0, window_days=0)], "rules[0].windowDays", "INVALID"),
        ([], "rules", "REQUIRED"),
    ],
)  # fmt: skip
async def test_preview_refuses_an_invalid_ladder(
    rules: list[TierRule], field: str, code: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        await preview.preview(rules=rules)
    assert (field, code) in {(e.field, e.code) for e in caught.value.errors}
