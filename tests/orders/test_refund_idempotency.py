"""A refund retried while its first attempt runs answers the first refund."""

from __future__ import annotations

import asyncio

import pytest

from loyalty.members.models import Member
from loyalty.orders.errors import RefundExceedsOrder
from loyalty.orders.models import Refund
from loyalty.orders.refunds import RefundLineIn, RefundResult, refund
from loyalty.points import service as points
from loyalty.points.audit import check_ledger
from tests.factories.members import create_member
from tests.factories.orders import line, record_order
from tests.factories.points import create_rule

pytestmark = pytest.mark.usefixtures("orm")


async def _ordered() -> Member:
    member = await create_member()
    await create_rule(points_per_unit=1)
    await record_order(
        member.id,
        external_id="T-1",
        lines=[line("A", 3, 1_000, category="tea"), line("B", 1, 7_000, category="cups")],
    )  # 100 points
    return member


@pytest.mark.parametrize("whole", [True, False])
@pytest.mark.parametrize("round_", range(3))
async def test_twin_refunds_of_everything_left_both_answer_the_first_refund(
    whole: bool, round_: int
) -> None:
    member = await _ordered()
    lines = None if whole else [RefundLineIn(1, 3), RefundLineIn(2, 1)]

    first, twin = await asyncio.gather(
        *(
            refund(channel="POS", order_external_id="T-1", refund_id="R1", whole=whole, lines=lines)
            for _ in range(2)
        ),
        return_exceptions=True,
    )

    assert isinstance(first, RefundResult), first
    assert isinstance(twin, RefundResult), twin
    assert first.refund.id == twin.refund.id
    assert sorted([first.replayed, twin.replayed]) == [False, True]
    assert (first.refund.amount, first.refund.points_reversed) == (10_000, 100)
    assert (twin.refund.amount, twin.refund.points_reversed) == (10_000, 100)
    assert await Refund.all().count() == 1
    assert (await points.get_account(member_id=member.id)).balance == 0
    row = await Member.get(id=member.id)
    assert (row.total_spend, row.order_count) == (0, 0)
    assert not await check_ledger()


async def test_another_refund_id_for_what_is_already_refunded_is_still_refused() -> None:
    await _ordered()

    outcomes = await asyncio.gather(
        *(
            refund(channel="POS", order_external_id="T-1", refund_id=rid, whole=True)
            for rid in ("R1", "R2")
        ),
        return_exceptions=True,
    )

    assert sorted(type(o).__name__ for o in outcomes) == ["RefundExceedsOrder", "RefundResult"]
    assert any(isinstance(o, RefundExceedsOrder) for o in outcomes)
    assert await Refund.all().count() == 1
