"""Expiry is true at every moment: a lot past its expiry is never spent nor shown, before any
sweep ran; the sweep covers every due member in chunks, and one member's failure stops no one."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from structlog.testing import capture_logs

from loyalty import clock
from loyalty.auth.principal import SYSTEM, Role
from loyalty.points import service
from loyalty.points.audit import check_ledger
from loyalty.points.errors import InsufficientPoints
from loyalty.points.models import EntryKind, PointsAccount, PointsAllocation, PointsEntry
from loyalty.points.service.expire import members_with_due_lots
from tests.conftest import token_for
from tests.factories.members import create_member
from tests.factories.points import grant_points
from tests.points.test_graphql import POINTS, REDEEM, gid

pytestmark = pytest.mark.usefixtures("orm")

ZONES = ["Asia/Shanghai", "America/Los_Angeles"]


def month_end(zone: str) -> tuple[datetime, datetime, datetime]:
    """(earned, last second of the lot, midnight after) in the business zone ``zone``."""
    tz = ZoneInfo(zone)
    return (
        datetime(2024, 1, 15, 12, tzinfo=tz),
        datetime(2025, 1, 31, 23, 59, 59, tzinfo=tz),
        datetime(2025, 2, 1, 0, 0, 0, tzinfo=tz),
    )


async def member_with_month_end_lot(zone: str) -> tuple[int, int, int]:
    """A member holding 100 points expiring at the end of January 2025 (program default,
    12 months) and 30 points valid for decades: ``(member_id, due_lot, kept_lot)``."""
    clock.configure(zone)
    earned, last_second, _midnight = month_end(zone)
    member = await create_member()
    with clock.frozen(earned):
        due = await grant_points(member.id, 100)
        kept = await grant_points(member.id, 30, expires_at=last_second.replace(year=2045))
    assert (await PointsEntry.get(id=due.entry_id)).expires_at == last_second
    return member.id, due.entry_id, kept.entry_id


@pytest.mark.parametrize("zone", ZONES)
async def test_a_lot_past_month_end_is_neither_spent_nor_shown_before_any_sweep(
    gql: Any, settings: Any, zone: str
) -> None:
    member_id, due_lot, kept_lot = await member_with_month_end_lot(zone)
    _earned, last_second, midnight = month_end(zone)
    token = token_for(settings, Role.MEMBER, member_id=member_id)

    with clock.frozen(last_second):
        read = (await gql(POINTS, {"id": gid(member_id)}, token=token))["data"]["member"]
    assert read["points"]["balance"] == 130
    assert read["points"]["expiringSoon"] == 100

    with clock.frozen(midnight):
        read = (await gql(POINTS, {"id": gid(member_id)}, token=token))["data"]["member"]
        refused = await gql(REDEEM, {"input": {"amount": 31, "idempotencyKey": "a"}}, token=token)
        with pytest.raises(InsufficientPoints) as short:
            await service.redeem(member_id=member_id, amount=130, idempotency_key="b")
    assert read["points"]["balance"] == 30
    assert read["points"]["expiringSoon"] == 0
    assert [lot["remaining"] for lot in read["points"]["lots"]] == [30]
    assert refused["data"]["redeemPoints"] == {
        "__typename": "InsufficientPointsError",
        "code": "INSUFFICIENT_POINTS",
        "balance": 30,
        "requested": 31,
    }
    assert short.value.balance == 30
    # A refusal writes nothing, not even the expiry it found.
    assert not await PointsEntry.filter(kind__in=[EntryKind.EXPIRE, EntryKind.REDEEM]).count()

    with clock.frozen(midnight):
        spent = await gql(REDEEM, {"input": {"amount": 30, "idempotencyKey": "c"}}, token=token)
        assert spent["data"]["redeemPoints"]["balance"] == 0
        assert (await service.expire_due()).expired == {}  # the redemption expired the lot
    drawn = await PointsAllocation.filter(
        entry_id=int(spent["data"]["redeemPoints"]["entryId"])
    ).values_list("lot_id", "amount")
    assert drawn == [(kept_lot, 30)]
    expiry = await PointsEntry.get(kind=EntryKind.EXPIRE)
    assert (expiry.amount, expiry.source_ref, expiry.balance_after) == (-100, str(due_lot), 30)
    assert (await PointsAccount.get(member_id=member_id)).balance == 0
    assert not await check_ledger()


async def test_a_lot_is_spendable_up_to_its_last_second() -> None:
    member_id, _due, _kept = await member_with_month_end_lot(ZONES[0])
    _earned, last_second, _midnight = month_end(ZONES[0])
    with clock.frozen(last_second):
        spent = await service.redeem(member_id=member_id, amount=130, idempotency_key="all")
    assert spent.balance == 0
    assert not await check_ledger()


@pytest.mark.parametrize("write", ["award", "adjust_up", "adjust_down", "refused_redeem"])
async def test_every_write_at_midnight_expires_the_lot_first(write: str) -> None:
    member_id, due_lot, _kept = await member_with_month_end_lot(ZONES[0])
    _earned, _last, midnight = month_end(ZONES[0])
    with clock.frozen(midnight):
        if write == "award":
            moved = await grant_points(member_id, 10)
            assert moved.balance == 40
        elif write in ("adjust_up", "adjust_down"):
            amount = 10 if write == "adjust_up" else -10
            moved = await service.adjust(
                actor=SYSTEM,
                member_id=member_id,
                amount=amount,
                reason="纠错",
                idempotency_key="adj",
            )
            assert moved.balance == 30 + amount
        else:
            with pytest.raises(InsufficientPoints):
                await service.adjust(
                    actor=SYSTEM,
                    member_id=member_id,
                    amount=-31,
                    reason="纠错",
                    idempotency_key="adj",
                )
        balance = (await service.get_account(member_id=member_id)).balance
    lot = await PointsEntry.get(id=due_lot)
    if write == "refused_redeem":
        assert (balance, lot.remaining) == (30, 100)  # rolled back; reads still leave it out
    else:
        assert (balance, lot.remaining) == (moved.balance, 0)
        assert (await PointsAccount.get(member_id=member_id)).balance == moved.balance
    assert not await check_ledger()


async def test_the_sweep_covers_every_due_member_in_chunks() -> None:
    past = clock.now() - timedelta(days=1)
    members = [await create_member() for _ in range(7)]
    for i, member in enumerate(members):
        await grant_points(member.id, 5, expires_at=past + timedelta(days=400))
        await grant_points(member.id, 10 + i, expires_at=past)  # due, never touched since
    untouched = await create_member()
    await grant_points(untouched.id, 50, expires_at=past + timedelta(days=400))
    assert len(await members_with_due_lots(limit=3)) == 3

    sweep = await service.expire_due(chunk_size=3)

    assert sweep.expired == {m.id: 10 + i for i, m in enumerate(members)}
    assert sweep.failed == []
    assert await members_with_due_lots() == []
    assert {m.id: s.balance for m, s in zip(members, await _accounts(members), strict=True)} == {
        m.id: 5 for m in members
    }
    assert (await service.get_account(member_id=untouched.id)).balance == 50
    assert (await service.expire_due(chunk_size=3)).expired == {}
    assert not await check_ledger()


async def test_a_member_whose_expiry_fails_does_not_stop_the_others() -> None:
    past = clock.now() - timedelta(days=1)
    members = [await create_member() for _ in range(5)]
    for member in members:
        await grant_points(member.id, 20, expires_at=past)
    broken = members[1]
    # Books that disagree with themselves: the account holds less than the due lot.
    await PointsAccount.filter(member_id=broken.id).update(balance=5)

    with capture_logs() as logs:
        sweep = await service.expire_due(chunk_size=2)

    assert sweep.failed == [broken.id]
    assert sweep.expired == {m.id: 20 for m in members if m is not broken}
    failures = [e for e in logs if e["event"] == "points.expire.failed"]
    assert [e["member_id"] for e in failures] == [broken.id]
    assert await members_with_due_lots() == [broken.id]

    await PointsAccount.filter(member_id=broken.id).update(balance=20)
    again = await service.expire_due(chunk_size=2)
    assert (again.expired, again.failed) == ({broken.id: 20}, [])
    assert not await check_ledger()


@pytest.mark.parametrize("round_", range(5))
async def test_a_redemption_racing_the_sweep_expires_the_lot_once(round_: int) -> None:
    member_id, due_lot, _kept = await member_with_month_end_lot(ZONES[0])
    _earned, _last, midnight = month_end(ZONES[0])
    with clock.frozen(midnight):
        outcomes = await asyncio.gather(
            service.expire_member(member_id=member_id),
            service.redeem(member_id=member_id, amount=20, idempotency_key=f"r{round_}"),
            service.expire_due(),
            return_exceptions=True,
        )
    assert not [o for o in outcomes if isinstance(o, BaseException)], outcomes
    assert await PointsEntry.filter(kind=EntryKind.EXPIRE).count() == 1
    assert (await PointsEntry.get(id=due_lot)).remaining == 0
    assert (await service.get_account(member_id=member_id)).balance == 10
    assert not await check_ledger()


async def _accounts(members: list[Any]) -> list[Any]:
    return [await service.get_account(member_id=m.id) for m in members]
