"""Refunds: points reversed exactly once, clawback and debt, redeemed points returned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from loyalty import clock
from loyalty.auth.principal import SYSTEM
from loyalty.errors import ValidationError
from loyalty.members.models import Member
from loyalty.orders.errors import OrderNotFound, RefundConflict, RefundExceedsOrder
from loyalty.orders.models import MemberCategoryStat, OrderLine, Refund
from loyalty.orders.refunds import RefundLineIn, refund
from loyalty.points import service as points
from loyalty.points.audit import check_ledger
from loyalty.points.models import EntryKind, PointsEntry
from tests.factories.members import create_member
from tests.factories.orders import line, record_order
from tests.factories.points import create_rule, grant_points

pytestmark = pytest.mark.usefixtures("orm")

T0 = datetime(2024, 6, 3, 4, 0, tzinfo=UTC)


async def _order(member_id: int, external_id: str = "T-1", **extra: object) -> None:
    await record_order(
        member_id,
        external_id=external_id,
        lines=[line("A", 3, 1_000, category="tea"), line("B", 1, 7_000, category="cups")],
        **extra,
    )


async def test_partial_refund_reverses_points_of_refunded_lines_once() -> None:
    member = await create_member()
    await create_rule(points_per_unit=1)
    await _order(member.id)  # 100 points: A 30, B 70
    first = await refund(
        channel="POS", order_external_id="T-1", refund_id="R1", lines=[RefundLineIn(1, 2)]
    )
    assert (first.refund.amount, first.refund.points_reversed) == (2_000, 20)
    again = await refund(
        channel="POS", order_external_id="T-1", refund_id="R1", lines=[RefundLineIn(1, 2)]
    )
    assert again.replayed and again.refund.id == first.refund.id
    assert (await points.get_account(member_id=member.id)).balance == 80
    row = await Member.get(id=member.id)
    assert (row.total_spend, row.order_count) == (8_000, 1)
    tea = await MemberCategoryStat.get(member_id=member.id, category="tea")
    assert (tea.spend, tea.quantity) == (1_000, 1)

    rest = await refund(channel="POS", order_external_id="T-1", refund_id="R2", whole=True)
    assert (rest.refund.amount, rest.refund.points_reversed) == (8_000, 80)
    assert (await points.get_account(member_id=member.id)).balance == 0
    row = await Member.get(id=member.id)
    assert (row.total_spend, row.order_count) == (0, 0)
    assert not await check_ledger()


async def test_refund_after_spending_claws_back_to_zero_and_records_a_debt() -> None:
    member = await create_member()
    await create_rule(points_per_unit=1)
    await _order(member.id)
    await points.redeem(member_id=member.id, amount=90, idempotency_key="spent")
    result = await refund(channel="POS", order_external_id="T-1", refund_id="R1", whole=True)
    assert (result.refund.points_reversed, result.refund.debt_created) == (100, 90)
    account = await points.get_account(member_id=member.id)
    assert (account.balance, account.debt) == (0, 90)

    # Later earnings settle the debt first.
    await grant_points(member.id, 50)
    assert (await points.get_account(member_id=member.id)).debt == 40
    await grant_points(member.id, 60)
    account = await points.get_account(member_id=member.id)
    assert (account.balance, account.debt) == (20, 0)
    kinds = (
        await PointsEntry.filter(member_id=member.id).order_by("id").values_list("kind", flat=True)
    )
    assert EntryKind.DEBT in kinds and kinds.count(EntryKind.SETTLE) == 2
    assert not await check_ledger()


async def test_points_that_paid_for_refunded_lines_return_to_their_lots() -> None:
    member = await create_member()
    with clock.frozen(T0):
        soon = await grant_points(member.id, 30, expires_at=T0 + timedelta(days=20))
        later = await grant_points(member.id, 70, expires_at=T0 + timedelta(days=400))
        await points.redeem(
            member_id=member.id,
            amount=100,
            idempotency_key="pay",
            order_channel="POS",
            order_external_id="T-1",
        )
        await _order(member.id, points_payment=1_000)
    # Half a month later the first lot has expired: its share is not revived.
    with clock.frozen(T0 + timedelta(days=25)):
        result = await refund(channel="POS", order_external_id="T-1", refund_id="R1", whole=True)
    assert (result.refund.points_returned, result.refund.points_forfeited) == (70, 30)
    assert (await PointsEntry.get(id=later.entry_id)).remaining == 70
    assert (await PointsEntry.get(id=soon.entry_id)).remaining == 0
    with clock.frozen(T0 + timedelta(days=25)):
        assert (await points.get_account(member_id=member.id)).balance == 70
    assert not await check_ledger()


async def test_partial_refund_returns_the_lines_share_of_redeemed_points() -> None:
    member = await create_member()
    lot = await grant_points(member.id, 100)
    await points.redeem(
        member_id=member.id,
        amount=100,
        idempotency_key="pay",
        order_channel="POS",
        order_external_id="T-1",
    )
    await _order(member.id, points_payment=1_000)  # lines gross 3000 and 7000
    result = await refund(
        channel="POS", order_external_id="T-1", refund_id="R1", lines=[RefundLineIn(2, 1)]
    )
    assert result.refund.points_returned == 70
    assert (await PointsEntry.get(id=lot.entry_id)).remaining == 70
    assert not await check_ledger()


async def test_refund_inside_the_return_window_cancels_pending_points() -> None:
    member = await create_member()
    await create_rule(points_per_unit=1)
    await points.update_program(actor=SYSTEM, pending_days=7)
    await grant_points(member.id, 5)
    await _order(member.id)
    result = await refund(
        channel="POS", order_external_id="T-1", refund_id="R1", lines=[RefundLineIn(2, 1)]
    )
    assert result.refund.pending_cancelled == 70
    account = await points.get_account(member_id=member.id)
    assert (account.balance, account.pending, account.debt) == (5, 30, 0)
    assert not await check_ledger()


async def test_refund_of_more_than_bought_is_refused_and_writes_nothing() -> None:
    member = await create_member()
    await create_rule(points_per_unit=1)
    await _order(member.id)
    await refund(channel="POS", order_external_id="T-1", refund_id="R1", lines=[RefundLineIn(1, 2)])
    entries = await PointsEntry.all().count()
    with pytest.raises(RefundExceedsOrder) as caught:
        await refund(
            channel="POS", order_external_id="T-1", refund_id="R2", lines=[RefundLineIn(1, 2)]
        )
    assert (caught.value.requested, caught.value.refundable) == (2, 1)
    with pytest.raises(ValidationError):
        await refund(
            channel="POS", order_external_id="T-1", refund_id="R3", lines=[RefundLineIn(1, -1)]
        )
    with pytest.raises(ValidationError):
        await refund(
            channel="POS", order_external_id="T-1", refund_id="R4", lines=[RefundLineIn(9, 1)]
        )
    with pytest.raises(OrderNotFound):
        await refund(channel="POS", order_external_id="NOPE", refund_id="R5", whole=True)
    with pytest.raises(RefundConflict):
        await refund(channel="POS", order_external_id="T-1", refund_id="R1", whole=True)
    assert await Refund.all().count() == 1
    assert await PointsEntry.all().count() == entries
    assert (await OrderLine.get(line_no=1)).refunded_quantity == 2
