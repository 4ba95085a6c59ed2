"""Soak: a mixed, concurrent workload of orders, refunds, redemptions and replays; afterwards
the ledger checks clean, no balance is negative and every accepted write is there once.

`make test` runs a short round; `make soak` (LOYALTY_SOAK=1) runs a long one.
"""

from __future__ import annotations

import asyncio
import os
import random
from datetime import timedelta
from typing import Any

from loyalty import clock
from loyalty.errors import DomainError
from loyalty.orders import refunds
from loyalty.orders import service as orders
from loyalty.orders.models import Order
from loyalty.points import service as points
from loyalty.points.audit import check_ledger
from loyalty.points.models import PointsAccount
from tests.factories.members import create_member
from tests.factories.points import create_rule

LONG = os.environ.get("LOYALTY_SOAK") == "1"
MEMBERS = 40 if LONG else 8
ROUNDS = 60 if LONG else 4
CONCURRENCY = 25 if LONG else 10


async def test_mixed_concurrent_workload_keeps_the_books_right(orm: Any) -> None:
    await create_rule()
    rng = random.Random(7)
    members = [await create_member() for _ in range(MEMBERS)]
    accepted_orders: set[str] = set()
    outcomes = {"redeemed": 0, "refunded": 0}
    start = clock.now() - timedelta(days=1)

    async def one(op: int) -> None:
        member = rng.choice(members)
        kind = rng.random()
        external_id = f"soak-{op % (ROUNDS * CONCURRENCY // 2)}"  # ids repeat: replays
        try:
            if kind < 0.5:
                await orders.record(
                    channel="POS",
                    external_id=f"{external_id}-{member.id}",
                    occurred_at=start,
                    currency="CNY",
                    lines=[orders.LineIn(sku="sku-1", quantity=2, unit_price=10_000)],
                    member_id=member.id,
                )
                accepted_orders.add(f"{external_id}-{member.id}")
            elif kind < 0.8:
                await points.redeem(
                    member_id=member.id,
                    amount=rng.choice([50, 100, 300]),
                    idempotency_key=f"r-{member.id}-{op % 50}",
                )
                outcomes["redeemed"] += 1
            elif accepted_orders:
                await refunds.refund(
                    channel="POS",
                    order_external_id=rng.choice(sorted(accepted_orders)),
                    refund_id=f"rf-{op % 7}",
                    whole=True,
                )
                outcomes["refunded"] += 1
        except DomainError:
            pass  # insufficient points, unknown order, conflicts: expected outcomes

    for round_no in range(ROUNDS):
        await asyncio.gather(*(one(round_no * CONCURRENCY + i) for i in range(CONCURRENCY)))

    assert accepted_orders and outcomes["redeemed"] and outcomes["refunded"], outcomes
    assert await check_ledger() == []
    assert not await PointsAccount.filter(balance__lt=0).exists()
    stored = set(await Order.all().values_list("external_id", flat=True))
    assert accepted_orders <= stored
    assert len(stored) == await Order.all().count()
