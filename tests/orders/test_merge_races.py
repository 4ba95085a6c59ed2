"""Orders and pending points racing a member merge: everything lands on the survivor."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tortoise.transactions import in_transaction

from loyalty import clock
from loyalty.auth.principal import SYSTEM
from loyalty.members import merge as merging
from loyalty.members.models import IdentityKind, Member, MemberStatus
from loyalty.orders import service as orders
from loyalty.orders.models import MemberCategoryStat, Order
from loyalty.orders.service import IdentityRef
from loyalty.points import service as points
from loyalty.points.audit import check_ledger
from loyalty.points.models import PendingEarning, PendingStatus, PointsAccount, PointsEntry
from loyalty.points.service import ledger
from tests.conftest import BACKEND
from tests.factories.members import create_member
from tests.factories.orders import line, record_order
from tests.factories.points import create_rule

pytestmark = pytest.mark.usefixtures("orm")

T0 = datetime(2024, 6, 8, 4, 0, tzinfo=UTC)


class _MergeFirst:
    """Stands in for the order's transaction: commits a merge, then opens the real one."""

    def __init__(self, survivor_id: int, merged_id: int) -> None:
        self.ids = (survivor_id, merged_id)
        self.inner: Any = None

    async def __aenter__(self) -> Any:
        await merging.merge(
            survivor_id=self.ids[0], merged_id=self.ids[1], idempotency_key="m", actor=SYSTEM
        )
        self.inner = in_transaction()
        return await self.inner.__aenter__()

    async def __aexit__(self, *exc: Any) -> Any:
        return await self.inner.__aexit__(*exc)


def _merge_before_the_order_is_written(
    monkeypatch: pytest.MonkeyPatch, survivor_id: int, merged_id: int
) -> None:
    """The member was resolved, then a merge commits just before the order's transaction."""

    def once() -> Any:
        monkeypatch.setattr(orders, "in_transaction", in_transaction)
        return _MergeFirst(survivor_id, merged_id)

    monkeypatch.setattr(orders, "in_transaction", once)


async def _nothing_left_on(member_id: int) -> None:
    assert not await Order.filter(member_id=member_id).exists()
    assert not await PointsEntry.filter(member_id=member_id).exists()
    assert not await PendingEarning.filter(member_id=member_id).exists()
    assert not await MemberCategoryStat.filter(member_id=member_id).exists()
    account = await PointsAccount.get_or_none(member_id=member_id)
    assert account is None or (account.balance, account.pending, account.debt) == (0, 0, 0)
    assert (await Member.get(id=member_id)).status is MemberStatus.MERGED


@pytest.mark.parametrize("by", ["id", "identity"])
@pytest.mark.parametrize("pending_days", [0, 7])
async def test_an_order_whose_member_is_merged_before_it_is_written_lands_on_the_survivor(
    monkeypatch: pytest.MonkeyPatch, by: str, pending_days: int
) -> None:
    survivor = await create_member()
    merged = await create_member()
    await create_rule(points_per_unit=1)
    await points.update_program(actor=SYSTEM, pending_days=pending_days)
    _merge_before_the_order_is_written(monkeypatch, survivor.id, merged.id)
    who: dict[str, Any] = (
        {"member_id": merged.id}
        if by == "id"
        else {
            "member_id": None,
            "identity": IdentityRef(IdentityKind.PHONE, str(merged.phone)),
        }
    )

    result = await record_order(lines=[line("A", 1, 10_000, category="tea")], **who)

    assert result.order.member_id == survivor.id  # type: ignore[attr-defined]
    assert (result.points_earned, result.points_pending) == (
        (100, 0) if pending_days == 0 else (0, 100)
    )
    order = await Order.get(id=result.order.id)
    assert order.member_id == survivor.id  # type: ignore[attr-defined]
    account = await points.get_account(member_id=survivor.id)
    assert (account.balance, account.pending) == (result.points_earned, result.points_pending)
    row = await Member.get(id=survivor.id)
    assert (row.order_count, row.total_spend) == (1, 10_000)
    stat = await MemberCategoryStat.get(member_id=survivor.id, category="tea")
    assert (stat.spend, stat.order_count) == (10_000, 1)
    await _nothing_left_on(merged.id)
    assert not await check_ledger()


ROUNDS = 20 if BACKEND == "postgres" else 5


@pytest.mark.parametrize("round_", range(ROUNDS))
async def test_orders_recorded_while_their_member_is_merged_land_on_the_survivor(
    round_: int,
) -> None:
    survivor = await create_member()
    merged = await create_member()
    await create_rule(points_per_unit=1)
    await record_order(merged.id, external_id=f"before-{round_}")

    async def order(i: int) -> orders.OrderResult:
        await asyncio.sleep(0.001 * i)
        return await record_order(merged.id, external_id=f"during-{round_}-{i}")

    outcomes = await asyncio.gather(
        merging.merge(
            survivor_id=survivor.id, merged_id=merged.id, idempotency_key="m", actor=SYSTEM
        ),
        *(order(i) for i in range(4)),
        return_exceptions=True,
    )

    assert not [o for o in outcomes if isinstance(o, BaseException)], outcomes
    await _nothing_left_on(merged.id)
    assert await Order.filter(member_id=survivor.id).count() == 5
    row = await Member.get(id=survivor.id)
    assert (row.order_count, row.total_spend) == (5, 50_000)
    assert (await points.get_account(member_id=survivor.id)).balance == 500
    assert not await check_ledger()


async def _pending_left_on(member_id: int, order_id: int, amount: int) -> None:
    """Pending points a merged member still holds: an order written on it while it was being
    merged, as the order path once allowed."""
    async with in_transaction() as conn:
        await ledger.lock_account(conn, member_id)
        await PendingEarning.create(
            using_db=conn,
            member_id=member_id,
            order_id=order_id,
            amount=amount,
            original_amount=amount,
            activates_at=T0 + timedelta(days=7),
            created_at=T0,
        )
        await ledger.change_pending(conn, member_id, amount)


async def test_pending_points_activating_on_a_merged_member_credit_the_survivor() -> None:
    survivor = await create_member()
    merged = await create_member()
    await merging.merge(
        survivor_id=survivor.id, merged_id=merged.id, idempotency_key="m", actor=SYSTEM
    )
    await _pending_left_on(merged.id, order_id=4242, amount=80)

    with clock.frozen(T0 + timedelta(days=7, seconds=1)):
        activated = await points.activate_pending()
        account = await points.get_account(member_id=survivor.id)

    assert activated == [survivor.id]
    assert (account.balance, account.pending) == (80, 0)
    gone = await PointsAccount.get(member_id=merged.id)
    assert (gone.balance, gone.pending) == (0, 0)
    pending = await PendingEarning.get(order_id=4242)
    assert (pending.member_id, pending.status) == (survivor.id, PendingStatus.ACTIVATED)  # type: ignore[attr-defined]
    lot = await PointsEntry.get(order_id=4242)
    assert (lot.member_id, lot.remaining) == (survivor.id, 80)  # type: ignore[attr-defined]
    assert not await check_ledger()


async def test_pending_points_of_a_member_merged_twice_follow_the_chain() -> None:
    first, second, last = [await create_member() for _ in range(3)]
    await _pending_left_on(first.id, order_id=77, amount=30)
    async with in_transaction() as conn:
        # As a merge left it before the pending points were moved.
        await (
            Member.filter(id=first.id)
            .using_db(conn)
            .update(status=MemberStatus.MERGED, merged_into_id=second.id, phone=None)
        )
    await merging.merge(survivor_id=last.id, merged_id=second.id, idempotency_key="m", actor=SYSTEM)
    # The earlier merge now points at the last survivor; check the walk with a two-hop chain.
    await Member.filter(id=first.id).update(merged_into_id=second.id)

    with clock.frozen(T0 + timedelta(days=8)):
        assert await points.activate_pending() == [last.id]
        assert (await points.get_account(member_id=last.id)).balance == 30
    assert not await check_ledger()
