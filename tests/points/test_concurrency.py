"""Concurrent writers against one account: the balance never goes below zero, on both backends."""

from __future__ import annotations

import asyncio

import pytest

from loyalty.points import service
from loyalty.points.audit import check_ledger
from loyalty.points.errors import InsufficientPoints
from loyalty.points.models import EntryKind, PointsEntry
from tests.factories.members import create_member
from tests.factories.points import grant_points

pytestmark = pytest.mark.usefixtures("orm")


@pytest.mark.parametrize("round_", range(20))
async def test_fifty_concurrent_redemptions_of_ten_against_a_hundred(round_: int) -> None:
    member = await create_member()
    await grant_points(member.id, 60)
    await grant_points(member.id, 40)

    outcomes = await asyncio.gather(
        *(
            service.redeem(member_id=member.id, amount=10, idempotency_key=f"r{round_}-{i}")
            for i in range(50)
        ),
        return_exceptions=True,
    )

    succeeded = [o for o in outcomes if isinstance(o, service.Movement)]
    refused = [o for o in outcomes if isinstance(o, InsufficientPoints)]
    assert len(succeeded) == 10, [o for o in outcomes if isinstance(o, Exception)][:3]
    assert len(refused) == 40
    assert (await service.get_account(member_id=member.id)).balance == 0
    assert await PointsEntry.filter(kind=EntryKind.REDEEM).count() == 10
    assert sorted(o.balance for o in succeeded) == list(range(0, 100, 10))
    assert not await check_ledger()


async def test_concurrent_replays_of_one_key_redeem_once() -> None:
    member = await create_member()
    await grant_points(member.id, 100)
    outcomes = await asyncio.gather(
        *(service.redeem(member_id=member.id, amount=25, idempotency_key="same") for _ in range(10))
    )
    assert len({o.entry_id for o in outcomes}) == 1
    assert sum(not o.replayed for o in outcomes) == 1
    assert (await service.get_account(member_id=member.id)).balance == 75
