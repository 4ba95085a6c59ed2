"""recordOrder as a service: points, stats, idempotency, bad input, guests, pending points."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from loyalty import clock, hooks
from loyalty.errors import ValidationError
from loyalty.events.models import Event
from loyalty.members import service as members
from loyalty.members.models import Channel, IdentityKind, Member
from loyalty.orders import service
from loyalty.orders.errors import OrderConflict
from loyalty.orders.models import MemberCategoryStat, Order, OrderLine
from loyalty.orders.service import IdentityRef
from loyalty.points import service as points
from loyalty.points.audit import check_ledger
from loyalty.points.models import EntryKind, PendingEarning, PointsEntry, RuleKind
from tests.factories.members import create_member
from tests.factories.orders import line, record_order
from tests.factories.points import create_rule

pytestmark = pytest.mark.usefixtures("orm")

T0 = datetime(2024, 6, 8, 4, 0, tzinfo=UTC)  # the 8th, 12:00 in Shanghai (a Saturday)


async def test_an_order_earns_points_per_currency_unit_paid_rounded_down() -> None:
    member = await create_member()
    await create_rule(points_per_unit=1)
    with clock.frozen(T0):
        result = await record_order(
            member.id,
            lines=[line("A", 2, 4_999, category="shoes"), line("B", 1, 1_050)],
            discount_total=1_000,
            points_payment=500,
        )
    # paid = 9998 + 1050 - 1000 - 500 = 9548 fen = 95.48 CNY → 95 points
    assert result.order.paid_amount == 9_548
    assert (result.points_earned, result.points_pending, result.balance) == (95, 0, 95)
    lines = await OrderLine.filter(order_id=result.order.id).order_by("line_no")
    assert sum(x.points for x in lines) == 95
    assert sum(x.paid for x in lines) == 9_548
    assert sum(x.discount for x in lines) == 1_000
    assert sum(x.points_payment for x in lines) == 500
    row = await Member.get(id=member.id)
    assert (row.total_spend, row.order_count) == (9_548, 1)
    assert row.first_order_at == row.last_order_at == T0
    stat = await MemberCategoryStat.get(member_id=member.id, category="shoes")
    assert (stat.quantity, stat.order_count) == (2, 1)
    assert await Event.filter(kind="order.recorded").count() == 1


async def test_category_bonus_tier_multiplier_promotion_and_caps_apply() -> None:
    member = await create_member()
    await create_rule(code="base", points_per_unit=2)
    await create_rule(
        RuleKind.CATEGORY_BONUS, code="shoes-x3", categories=["shoes"], multiplier_permille=3000
    )
    await create_rule(
        RuleKind.CATEGORY_BONUS, code="shoes-x2", categories=["shoes"], multiplier_permille=2000
    )
    await create_rule(
        RuleKind.PROMOTION, code="member-day", days_of_month=[8], multiplier_permille=1500
    )
    await create_rule(RuleKind.PROMOTION, code="app-only", channels=["APP"])

    async def gold(member_id: int, conn: Any) -> int:
        return 1250

    hooks.MULTIPLIER_PROVIDERS.append(gold)
    try:
        with clock.frozen(T0):
            result = await record_order(
                member.id, lines=[line("S", 1, 10_000, category="shoes"), line("T", 1, 3_333)]
            )
            simulated = await service.simulate(
                channel="POS",
                occurred_at=T0,
                currency="CNY",
                lines=[line("S", 1, 10_000, category="shoes"), line("T", 1, 3_333)],
                member_id=member.id,
            )
    finally:
        hooks.MULTIPLIER_PROVIDERS.remove(gold)
    # shoes: 100 × 2 × 1.25 × 3 × 1.5 = 1125; other: 33.33 × 2 × 1.25 × 1.5 = 124.9875
    assert result.points_earned == 1_249
    reasons = {o.code: o.reason.value for o in simulated.calculation.outcomes}
    assert reasons == {
        "base": "APPLIED",
        "shoes-x3": "APPLIED",
        "shoes-x2": "SUPERSEDED",
        "member-day": "APPLIED",
        "app-only": "CHANNEL_EXCLUDED",
    }
    assert simulated.calculation.points == 1_249
    assert await Order.all().count() == 1  # the simulation wrote nothing


async def test_per_order_and_per_day_caps() -> None:
    member = await create_member()
    await create_rule(points_per_unit=1)
    await points.update_program(actor=_admin(), per_order_cap=80, per_day_cap=100)
    with clock.frozen(T0):
        first = await record_order(member.id, lines=[line(unit_price=20_000)])
        second = await record_order(member.id, lines=[line(unit_price=20_000)])
        third = await record_order(member.id, lines=[line(unit_price=20_000)])
    assert [first.points_earned, second.points_earned, third.points_earned] == [80, 20, 0]


async def test_replay_returns_the_first_result_and_other_content_conflicts() -> None:
    member = await create_member()
    await create_rule(points_per_unit=1)
    first = await record_order(member.id, external_id="T-replay")
    again = await record_order(
        member.id, external_id="T-replay", occurred_at=first.order.occurred_at
    )
    assert again.replayed and again.order.id == first.order.id
    assert (again.points_earned, again.balance) == (first.points_earned, first.balance)
    with pytest.raises(OrderConflict):
        await record_order(
            member.id,
            external_id="T-replay",
            occurred_at=first.order.occurred_at,
            lines=[line(unit_price=10_001)],
        )
    assert await Order.all().count() == 1
    assert (await Member.get(id=member.id)).order_count == 1


async def test_twenty_concurrent_identical_orders_make_one_order_and_one_earn_entry() -> None:
    member = await create_member()
    await create_rule(points_per_unit=1)
    occurred = clock.now()
    results = await asyncio.gather(
        *(record_order(member.id, external_id="T-same", occurred_at=occurred) for _ in range(20))
    )
    assert len({r.order.id for r in results}) == 1
    assert sum(not r.replayed for r in results) == 1
    assert await Order.all().count() == 1
    assert await PointsEntry.filter(kind=EntryKind.EARN).count() == 1
    assert (await points.get_account(member_id=member.id)).balance == 100
    assert (await Member.get(id=member.id)).order_count == 1


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [
        ({"lines": [line(quantity=-1)]}, "lines[0].quantity", "OUT_OF_RANGE"),
        ({"lines": [line(quantity=0)]}, "lines[0].quantity", "OUT_OF_RANGE"),
        ({"lines": [line(quantity=1.5)]}, "lines[0].quantity", "OUT_OF_RANGE"),  # type: ignore[arg-type]
        ({"lines": [line(unit_price=-100)]}, "lines[0].unitPrice", "OUT_OF_RANGE"),
        ({"lines": [line(unit_price=99.5)]}, "lines[0].unitPrice", "OUT_OF_RANGE"),  # type: ignore[arg-type]
        ({"lines": [line(unit_price=2**63)]}, "lines[0].unitPrice", "OUT_OF_RANGE"),
        ({"lines": [line(quantity=4, unit_price=2**62)]}, "lines[0].unitPrice", "TOO_LARGE"),
        ({"currency": "XXX"}, "currency", "UNKNOWN_CURRENCY"),
        ({"lines": []}, "lines", "REQUIRED"),
        ({"discount_total": 20_000}, "discountTotal", "INVALID"),
        ({"external_id": ""}, "externalId", "INVALID"),
    ],
)
async def test_bad_input_is_a_typed_error_and_writes_nothing(
    overrides: dict[str, Any], field: str, code: str
) -> None:
    member = await create_member()
    with pytest.raises(ValidationError) as caught:
        await record_order(member.id, **overrides)
    assert [(e.field, e.code) for e in caught.value.errors] == [(field, code)]
    assert await Order.all().count() == 0
    assert await OrderLine.all().count() == 0
    assert await PointsEntry.all().count() == 0


async def test_guest_order_attaches_and_earns_when_the_identity_is_linked() -> None:
    await create_rule(points_per_unit=1)
    card = IdentityRef(IdentityKind.POS_CARD, "CARD-77")
    with clock.frozen(T0 - timedelta(days=45)):
        old = await record_order(identity=card, lines=[line(unit_price=5_000)])
    with clock.frozen(T0 - timedelta(days=5)):
        recent = await record_order(identity=card, lines=[line(unit_price=7_000)])
    assert old.guest and recent.guest and recent.points_earned == 0

    member = await create_member()
    with clock.frozen(T0):
        await members.link_identity(
            member_id=member.id, kind=IdentityKind.POS_CARD, value="CARD-77", channel=Channel.POS
        )
        # Linking again changes nothing.
        await members.link_identity(
            member_id=member.id, kind=IdentityKind.POS_CARD, value="CARD-77", channel=Channel.POS
        )
    orders = {o.id: o for o in await Order.filter(member_id=member.id)}
    assert set(orders) == {old.order.id, recent.order.id}
    assert orders[recent.order.id].points_earned == 70
    assert orders[old.order.id].points_earned == 0  # outside the 30-day window
    row = await Member.get(id=member.id)
    assert (row.total_spend, row.order_count) == (12_000, 2)
    with clock.frozen(T0):
        assert (await points.get_account(member_id=member.id)).balance == 70
    assert not await check_ledger()


async def test_pending_points_activate_after_the_return_window() -> None:
    member = await create_member()
    await create_rule(points_per_unit=1)
    await points.update_program(actor=_admin(), pending_days=7)
    with clock.frozen(T0):
        result = await record_order(member.id)
    assert (result.points_earned, result.points_pending) == (0, 100)
    account = await points.get_account(member_id=member.id)
    assert (account.balance, account.pending) == (0, 100)
    with clock.frozen(T0 + timedelta(days=6)):
        assert await points.activate_pending() == []
    with clock.frozen(T0 + timedelta(days=7, seconds=1)):
        assert await points.activate_pending() == [member.id]
        assert await points.activate_pending() == []
        account = await points.get_account(member_id=member.id)
    assert (account.balance, account.pending) == (100, 0)
    assert (await PendingEarning.get(order_id=result.order.id)).status == "ACTIVATED"
    assert not await check_ledger()


def _admin() -> Any:
    from loyalty.auth.principal import SYSTEM

    return SYSTEM
