"""Upgrades happen in the order's transaction, at the threshold, over the rolling window."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from loyalty import clock, hooks
from loyalty.events.models import Event
from loyalty.tiers import service
from loyalty.tiers.models import ChangeReason, MemberTier, Tier, TierChange
from tests.factories.members import create_member
from tests.factories.tiers import create_order, earn_points

pytestmark = pytest.mark.usefixtures("ladder")


async def tier_code(member_id: int) -> str:
    return (await service.standing(member_id=member_id)).tier.code


@pytest.mark.parametrize(
    ("paid", "expected"),
    [(199_999, "BASIC"), (200_000, "SILVER"), (799_999, "SILVER"), (800_000, "GOLD")],
)
async def test_upgrade_at_the_exact_threshold_and_not_one_fen_below(
    paid: int, expected: str
) -> None:
    member = await create_member()
    _order, results = await create_order(member.id, paid, run_hooks=True)
    assert await tier_code(member.id) == expected
    tier_results = [r for r in results if r and "tier_change" in r]
    if expected == "BASIC":
        assert tier_results == []
    else:
        assert tier_results == [{"tier_change": {"from": "BASIC", "to": expected}}]


async def test_upgrade_records_history_event_and_expiry(now: datetime) -> None:
    member = await create_member()
    await create_order(member.id, 150_000, run_hooks=True)
    second, _ = await create_order(member.id, 50_000, run_hooks=True)

    row = await MemberTier.get(member_id=member.id).prefetch_related("tier")
    assert row.tier.code == "SILVER"
    assert row.since == now
    assert row.expires_at == now + timedelta(days=365)
    [change] = await TierChange.filter(member_id=member.id)
    assert (change.from_code, change.to_code, change.reason) == ("BASIC", "SILVER", "ORDER")
    assert change.order_id == second.id and change.actor == "system"
    assert change.metric_value == 200_000
    event = await Event.get(kind="tier.changed", member_id=member.id)
    assert event.payload["to"] == "SILVER" and event.payload["direction"] == "UP"


async def test_one_order_can_jump_several_tiers() -> None:
    member = await create_member()
    await create_order(member.id, 2_000_000, run_hooks=True)
    assert await tier_code(member.id) == "DIAMOND"


async def test_rolling_window_includes_its_first_instant_only(now: datetime) -> None:
    edge = now - timedelta(days=365)
    inside = await create_member()
    outside = await create_member()
    await create_order(inside.id, 100_000, occurred_at=edge)
    await create_order(outside.id, 100_000, occurred_at=edge - timedelta(microseconds=1))

    await create_order(inside.id, 100_000, run_hooks=True)
    await create_order(outside.id, 100_000, run_hooks=True)

    assert await tier_code(inside.id) == "SILVER"
    assert await tier_code(outside.id) == "BASIC"


async def test_refunded_spend_does_not_qualify_and_a_refund_never_downgrades() -> None:
    member = await create_member()
    await create_order(member.id, 250_000, refunded=100_000, run_hooks=True)
    assert await tier_code(member.id) == "BASIC"  # 150,000 net

    await create_order(member.id, 50_000, run_hooks=True)
    assert await tier_code(member.id) == "SILVER"

    facts = hooks.OrderFacts(
        member_id=member.id, order_id=1, channel="POS", paid_amount=-50_000,
        occurred_at=clock.now(), is_refund=True,
    )  # fmt: skip
    from loyalty.db import connection
    from loyalty.tiers.hooks import upgrade_on_order

    assert await upgrade_on_order(facts, connection()) is None
    assert await tier_code(member.id) == "SILVER"


async def test_points_and_order_count_metrics(orm: Any) -> None:
    await service.create_tier(
        code="POINTS_STAR", name="积分之星", rank=40, metric="POINTS", threshold=5_000,
        window="CALENDAR_YEAR", window_days=None,
    )  # fmt: skip
    member = await create_member()
    await earn_points(member.id, 4_999)
    await create_order(member.id, 100, run_hooks=True)
    assert await tier_code(member.id) == "BASIC"
    await earn_points(member.id, 1)
    await create_order(member.id, 100, run_hooks=True)
    assert await tier_code(member.id) == "POINTS_STAR"


async def test_calendar_year_window_starts_on_january_first_business_time(
    now: datetime,
) -> None:
    await service.create_tier(
        code="FREQUENT", name="常客", rank=40, metric="ORDERS", threshold=3,
        window="CALENDAR_YEAR", window_days=None,
    )  # fmt: skip
    # 2026-01-01 00:00 in Shanghai is 2025-12-31 16:00 UTC.
    new_year = datetime.fromisoformat("2025-12-31T16:00:00+00:00")
    counted, not_counted = await create_member(), await create_member()
    await create_order(counted.id, 100, occurred_at=new_year)
    await create_order(not_counted.id, 100, occurred_at=new_year - timedelta(seconds=1))
    for member in (counted, not_counted):
        await create_order(member.id, 100)
        await create_order(member.id, 100, run_hooks=True)
    assert await tier_code(counted.id) == "FREQUENT"
    assert await tier_code(not_counted.id) == "BASIC"


async def test_multiplier_follows_the_tier() -> None:
    member = await create_member()
    [provider] = [p for p in hooks.MULTIPLIER_PROVIDERS if p.__module__ == "loyalty.tiers.hooks"]
    assert await provider(member.id, None) == 1000
    await create_order(member.id, 800_000, run_hooks=True)
    assert await provider(member.id, None) == 1500


async def test_unknown_member_tier_defaults_to_entry(orm: Any) -> None:
    tiers = await Tier.all()
    assert {t.code for t in tiers} == {"BASIC", "SILVER", "GOLD", "DIAMOND"}
    member = await create_member()
    assert (await service.standing(member_id=member.id)).row is None
    assert ChangeReason.ORDER.value == "ORDER"
