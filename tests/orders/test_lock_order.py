"""Merges, orders, refunds and point movements on the same members at once: every writer takes
its locks in the ledger's order, so none fails and the books stay right."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import pytest

from loyalty import db
from loyalty.auth.principal import SYSTEM
from loyalty.members import merge as merging
from loyalty.members.models import Member
from loyalty.orders import refunds
from loyalty.orders.models import Order
from loyalty.orders.refunds import RefundLineIn
from loyalty.points import service as points
from loyalty.points.audit import check_ledger
from loyalty.points.models import PointsAccount
from tests.conftest import BACKEND
from tests.factories.members import create_member
from tests.factories.orders import line, record_order
from tests.factories.points import create_rule

pytestmark = pytest.mark.usefixtures("orm")

ROUNDS = 50 if BACKEND == "postgres" else 10


@pytest.fixture
def retries(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The services run again after a deadlock or a serialization failure."""
    seen: list[str] = []
    original = db.is_retryable

    def counting(exc: BaseException) -> bool:
        found = original(exc)
        if found:
            seen.append(repr(exc))
        return found

    monkeypatch.setattr(db, "is_retryable", counting)
    return seen


async def _staggered(delay: float, work: Awaitable[Any]) -> Any:
    await asyncio.sleep(delay)
    return await work


@pytest.mark.parametrize("round_", range(ROUNDS))
async def test_concurrent_merge_orders_refunds_and_redemptions_all_succeed(
    round_: int, retries: list[str]
) -> None:
    await create_rule(points_per_unit=1)
    survivor = await create_member()
    merged = await create_member()
    two_lines = [line("A", 2, 5_000, category="tea"), line("B", 1, 10_000, category="cups")]
    await record_order(merged.id, external_id="M-1", lines=two_lines)  # 200 points
    await record_order(survivor.id, external_id="S-1", lines=two_lines)  # 200 points
    await points.redeem(
        member_id=merged.id,
        amount=50,
        idempotency_key="paid-with",
        order_channel="POS",
        order_external_id="M-1",
    )
    writers = [
        merging.merge(
            survivor_id=survivor.id, merged_id=merged.id, idempotency_key="m", actor=SYSTEM
        ),
        record_order(merged.id, external_id="M-2"),
        record_order(survivor.id, external_id="S-2"),
        refunds.refund(channel="POS", order_external_id="M-1", refund_id="r", whole=True),
        refunds.refund(
            channel="POS", order_external_id="S-1", refund_id="r", lines=[RefundLineIn(1, 1)]
        ),
        points.redeem(member_id=survivor.id, amount=30, idempotency_key="spend"),
        points.adjust(
            actor=SYSTEM, member_id=merged.id, amount=5, reason="goodwill", idempotency_key="a"
        ),
    ]
    # A different start order each round, so the writers meet in different interleavings.
    shift = round_ % len(writers)
    order = writers[shift:] + writers[:shift]
    outcomes = await asyncio.gather(
        *(_staggered(0.0005 * (i % 3), work) for i, work in enumerate(order)),
        return_exceptions=True,
    )

    assert not [o for o in outcomes if isinstance(o, BaseException)], outcomes
    assert await check_ledger() == []
    assert not await Order.filter(member_id=merged.id).exists()
    assert await Order.filter(member_id=survivor.id).count() == 4
    account = await PointsAccount.get(member_id=survivor.id)
    # 200 + 200 + 100 + 100 earned; M-1 fully refunded (its 200 back, the 50 spent on it
    # returned); one unit of S-1's line A refunded (50); 30 spent; 5 granted.
    assert (account.balance, account.debt) == (200 + 200 + 100 + 100 - 200 - 50 - 30 + 5, 0)
    row = await Member.get(id=survivor.id)
    assert (row.order_count, row.total_spend) == (
        3,
        20_000 + 20_000 + 10_000 + 10_000 - 20_000 - 5_000,
    )
    assert not retries, retries
