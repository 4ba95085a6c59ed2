"""The ledger through its services: lots, redemption order, idempotency, expiry, adjustments."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from loyalty import clock
from loyalty.auth.principal import SYSTEM
from loyalty.errors import ValidationError
from loyalty.points import service
from loyalty.points.audit import check_ledger
from loyalty.points.errors import IdempotencyConflict, InsufficientPoints
from loyalty.points.models import EntryKind, PointsAllocation, PointsEntry
from loyalty.points.service import ledger
from tests.factories.members import create_member
from tests.factories.points import grant_points

pytestmark = pytest.mark.usefixtures("orm")

T0 = datetime(2024, 3, 15, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai


def test_expiry_is_end_of_the_month_twelve_months_later_in_business_time() -> None:
    expires = ledger.expiry_for(T0, 12)
    assert expires == datetime(2025, 3, 31, 15, 59, 59, tzinfo=UTC)  # 23:59:59 +08:00
    # 2024-01-31 20:00 UTC is already February in Shanghai.
    assert ledger.expiry_for(datetime(2024, 1, 31, 20, tzinfo=UTC), 1) == datetime(
        2024, 3, 31, 15, 59, 59, tzinfo=UTC
    )
    assert ledger.expiry_for(T0, None) is None


async def test_a_grant_is_a_lot_with_the_default_expiry() -> None:
    member = await create_member()
    with clock.frozen(T0):
        movement = await grant_points(member.id, 120)
    assert movement.balance == 120
    lot = await PointsEntry.get(id=movement.entry_id)
    assert (lot.kind, lot.amount, lot.remaining) == (EntryKind.EARN, 120, 120)
    assert lot.expires_at == datetime(2025, 3, 31, 15, 59, 59, tzinfo=UTC)
    with clock.frozen(T0):
        assert (await service.get_account(member_id=member.id)).balance == 120


async def test_redemption_draws_on_the_oldest_expiry_first() -> None:
    member = await create_member()
    with clock.frozen(T0):
        late = await grant_points(member.id, 50, expires_at=T0 + timedelta(days=300))
        early = await grant_points(member.id, 30, expires_at=T0 + timedelta(days=10))
        never = await grant_points(member.id, 40, expires_at=None)
        await PointsEntry.filter(id=never.entry_id).update(expires_at=None)
        spent = await service.redeem(member_id=member.id, amount=60, idempotency_key="r1")
    assert spent.balance == 60
    allocations = await PointsAllocation.filter(entry_id=spent.entry_id).order_by("id")
    assert [(a.lot_id, a.amount) for a in allocations] == [  # type: ignore[attr-defined]
        (early.entry_id, 30),
        (late.entry_id, 30),
    ]
    assert not await check_ledger()


async def test_redeem_more_than_balance_is_refused_and_writes_nothing() -> None:
    member = await create_member()
    await grant_points(member.id, 10)
    before = await PointsEntry.all().count()
    with pytest.raises(InsufficientPoints) as caught:
        await service.redeem(member_id=member.id, amount=11, idempotency_key="too-much")
    assert (caught.value.balance, caught.value.requested) == (10, 11)
    assert caught.value.code == "INSUFFICIENT_POINTS"
    assert await PointsEntry.all().count() == before
    assert (await service.get_account(member_id=member.id)).balance == 10


async def test_same_key_replays_and_other_content_conflicts() -> None:
    member = await create_member()
    await grant_points(member.id, 100)
    first = await service.redeem(member_id=member.id, amount=30, idempotency_key="k")
    again = await service.redeem(member_id=member.id, amount=30, idempotency_key="k")
    assert again.replayed and again.entry_id == first.entry_id and again.balance == 70
    with pytest.raises(IdempotencyConflict):
        await service.redeem(member_id=member.id, amount=31, idempotency_key="k")
    assert (await service.get_account(member_id=member.id)).balance == 70
    assert await PointsEntry.filter(kind=EntryKind.REDEEM).count() == 1


@pytest.mark.parametrize(
    ("amount", "key", "field"),
    [
        (0, "k", "amount"),
        (-5, "k", "amount"),
        (2**63, "k", "amount"),
        (5, "", "idempotencyKey"),
    ],
)
async def test_bad_redemption_input_is_a_validation_error(
    amount: int, key: str, field: str
) -> None:
    member = await create_member()
    await grant_points(member.id, 10)
    with pytest.raises(ValidationError) as caught:
        await service.redeem(member_id=member.id, amount=amount, idempotency_key=key)
    assert [e.field for e in caught.value.errors] == [field]
    assert await PointsEntry.filter(kind=EntryKind.REDEEM).count() == 0


async def test_adjustments_need_a_reason_and_never_go_below_zero() -> None:
    member = await create_member()
    with pytest.raises(ValidationError):
        await service.adjust(
            actor=SYSTEM, member_id=member.id, amount=5, reason="  ", idempotency_key="a0"
        )
    up = await service.adjust(
        actor=SYSTEM, member_id=member.id, amount=25, reason="补偿", idempotency_key="a1"
    )
    assert up.balance == 25
    with pytest.raises(InsufficientPoints):
        await service.adjust(
            actor=SYSTEM, member_id=member.id, amount=-26, reason="纠错", idempotency_key="a2"
        )
    down = await service.adjust(
        actor=SYSTEM, member_id=member.id, amount=-25, reason="纠错", idempotency_key="a3"
    )
    assert down.balance == 0
    assert not await check_ledger()


async def test_expiry_job_expires_due_lots_once() -> None:
    member = await create_member()
    with clock.frozen(T0):
        await grant_points(member.id, 70)
        kept = await grant_points(member.id, 5, expires_at=T0 + timedelta(days=800))
        await service.redeem(member_id=member.id, amount=20, idempotency_key="spend")
    with clock.frozen(datetime(2025, 4, 1, tzinfo=UTC)):
        assert (await service.expire_due()).expired == {member.id: 50}
        assert (await service.expire_due()).expired == {}
        account = await service.get_account(member_id=member.id)
    assert account.balance == 5
    assert (await PointsEntry.get(id=kept.entry_id)).remaining == 5
    expired = await PointsEntry.filter(kind=EntryKind.EXPIRE)
    assert [e.amount for e in expired] == [-50]
    assert not await check_ledger()


async def test_check_ledger_reports_a_corrupted_row() -> None:
    member = await create_member()
    movement = await grant_points(member.id, 40)
    await service.redeem(member_id=member.id, amount=15, idempotency_key="x")
    assert await check_ledger() == []

    await PointsEntry.filter(id=movement.entry_id).update(remaining=30)  # should be 25
    problems = await check_ledger()
    subjects = {(p.subject, p.check) for p in problems}
    assert (f"member:{member.id}", "balance = Σ open lots") in subjects
    assert (f"lot:{movement.entry_id}", "remaining = amount − allocations") in subjects


async def test_the_database_refuses_a_negative_balance_or_lot() -> None:
    from tortoise.exceptions import IntegrityError

    from loyalty.points.models import PointsAccount

    member = await create_member()
    movement = await grant_points(member.id, 5)
    with pytest.raises(IntegrityError):
        await PointsAccount.filter(member_id=member.id).update(balance=-1)
    with pytest.raises(IntegrityError):
        await PointsEntry.filter(id=movement.entry_id).update(remaining=-1)
    assert (await service.get_account(member_id=member.id)).balance == 5


async def test_merge_adds_accounts_exactly_and_settles_debt() -> None:
    from loyalty.members import merge
    from loyalty.orders.refunds import refund
    from tests.factories.orders import record_order
    from tests.factories.points import create_rule

    await create_rule(points_per_unit=1)
    survivor = await create_member()
    merged = await create_member()
    await grant_points(survivor.id, 30)
    await record_order(merged.id, external_id="M-1")  # 100 points
    await service.redeem(member_id=merged.id, amount=100, idempotency_key="all")
    await refund(channel="POS", order_external_id="M-1", refund_id="R", whole=True)
    assert (await service.get_account(member_id=merged.id)).debt == 100

    await merge.merge(
        survivor_id=survivor.id, merged_id=merged.id, idempotency_key="m1", actor=SYSTEM
    )
    account = await service.get_account(member_id=survivor.id)
    assert (account.balance, account.debt) == (0, 70)
    gone = await service.get_account(member_id=merged.id)
    assert (gone.balance, gone.pending, gone.debt) == (0, 0, 0)
    assert await PointsEntry.filter(member_id=merged.id).count() == 0
    assert not await check_ledger()
