"""A request retried against a member who was merged meanwhile answers its first result.

Idempotency keys of value-moving requests belong to the member the caller named, before
merges are followed: the retry finds the first attempt however many merges came between.
"""

from __future__ import annotations

import pytest

from loyalty.auth.principal import SYSTEM
from loyalty.benefits import service as benefits
from loyalty.benefits.models import BenefitClaim, BenefitCounter, QuotaPeriod
from loyalty.members import merge
from loyalty.members.models import Member
from loyalty.orders.models import Order
from loyalty.points import service as points
from loyalty.points.audit import check_ledger
from loyalty.points.models import EntryKind, PointsEntry
from tests.factories.benefits import create_benefit, entitle
from tests.factories.members import create_member
from tests.factories.orders import record_order
from tests.factories.points import create_rule, grant_points
from tests.factories.tiers import create_ladder, place_on_tier

pytestmark = pytest.mark.usefixtures("orm")


async def _merge(survivor: Member, merged: Member) -> None:
    await merge.merge(
        survivor_id=survivor.id,
        merged_id=merged.id,
        idempotency_key=f"merge-{merged.id}",
        actor=SYSTEM,
    )


async def test_a_redemption_retried_after_a_merge_is_spent_once() -> None:
    merged, survivor = await create_member(), await create_member()
    await grant_points(merged.id, 100)
    await grant_points(survivor.id, 100)
    first = await points.redeem(member_id=merged.id, amount=60, idempotency_key="k")

    await _merge(survivor, merged)
    again = await points.redeem(member_id=merged.id, amount=60, idempotency_key="k")

    assert again.replayed and again.entry_id == first.entry_id
    assert (again.amount, again.balance) == (-60, 40)
    assert (await points.get_account(member_id=survivor.id)).balance == 140
    # The survivor's own key "k" is another request: it is spent on its own.
    own = await points.redeem(member_id=survivor.id, amount=10, idempotency_key="k")
    assert not own.replayed and own.entry_id != first.entry_id
    assert (await points.get_account(member_id=survivor.id)).balance == 130
    assert await PointsEntry.filter(kind=EntryKind.REDEEM).count() == 2
    assert not await check_ledger()


async def test_a_redemption_first_asked_after_the_merge_replays_against_the_same_member() -> None:
    merged, survivor = await create_member(), await create_member()
    await grant_points(survivor.id, 100)
    await _merge(survivor, merged)

    first = await points.redeem(member_id=merged.id, amount=30, idempotency_key="k")
    again = await points.redeem(member_id=merged.id, amount=30, idempotency_key="k")

    assert first.member_id == survivor.id and not first.replayed
    assert again.replayed and again.entry_id == first.entry_id
    assert (await points.get_account(member_id=survivor.id)).balance == 70


async def test_a_redemption_retried_across_two_merges_is_spent_once() -> None:
    first_member, middle, last = await create_member(), await create_member(), await create_member()
    await grant_points(first_member.id, 100)
    first = await points.redeem(member_id=first_member.id, amount=100, idempotency_key="k")

    await _merge(middle, first_member)
    await _merge(last, middle)
    again = await points.redeem(member_id=first_member.id, amount=100, idempotency_key="k")

    assert again.replayed and again.entry_id == first.entry_id
    assert (await points.get_account(member_id=last.id)).balance == 0


@pytest.mark.parametrize("amount", [50, -50])
async def test_an_adjustment_retried_after_a_merge_moves_points_once(amount: int) -> None:
    merged, survivor = await create_member(), await create_member()
    await grant_points(merged.id, 100)
    first = await points.adjust(
        actor=SYSTEM, member_id=merged.id, amount=amount, reason="补录", idempotency_key="k"
    )

    await _merge(survivor, merged)
    again = await points.adjust(
        actor=SYSTEM, member_id=merged.id, amount=amount, reason="补录", idempotency_key="k"
    )

    assert again.replayed and again.entry_id == first.entry_id
    assert (await points.get_account(member_id=survivor.id)).balance == 100 + amount
    assert await PointsEntry.filter(kind=EntryKind.ADJUST).count() == 1
    assert not await check_ledger()


async def _claimable() -> tuple[Member, Member, str]:
    ladder = await create_ladder()
    merged, survivor = await create_member(), await create_member()
    for member in (merged, survivor):
        await place_on_tier(member.id, ladder["SILVER"])
    benefit = await create_benefit()
    await entitle("SILVER", benefit, period=QuotaPeriod.MONTH, quota=5)
    return merged, survivor, benefit.code


async def _claim(member: Member, code: str, key: str) -> benefits.ClaimOutcome:
    return await benefits.claim(
        member_id=member.id, benefit_code=code, channel="APP", idempotency_key=key
    )


async def test_a_claim_retried_after_a_merge_takes_one_use() -> None:
    merged, survivor, code = await _claimable()
    first = await _claim(merged, code, "k")
    own = await _claim(survivor, code, "k")  # the survivor's own claim under the same key

    await _merge(survivor, merged)
    again = await _claim(merged, code, "k")
    own_again = await _claim(survivor, code, "k")

    assert again.replayed and again.claim.id == first.claim.id
    assert own_again.replayed and own_again.claim.id == own.claim.id
    assert await BenefitClaim.filter(member_id=survivor.id).count() == 2
    [counter] = await BenefitCounter.filter(member_id__in=[merged.id, survivor.id])
    assert (counter.member_id, counter.used) == (survivor.id, 2)


async def test_a_claim_first_asked_after_the_merge_lands_on_the_survivor_once() -> None:
    merged, survivor, code = await _claimable()
    await _merge(survivor, merged)

    first = await _claim(merged, code, "k")
    again = await _claim(merged, code, "k")
    own = await _claim(survivor, code, "k")

    assert first.claim.member_id == survivor.id and first.uses_left == 4  # type: ignore[attr-defined]
    assert again.replayed and again.claim.id == first.claim.id
    assert not own.replayed and own.claim.id != first.claim.id
    counter = await BenefitCounter.get(member_id=survivor.id)
    assert counter.used == 2


async def test_a_claim_retried_across_two_merges_takes_one_use() -> None:
    first_member, middle, code = await _claimable()
    last = await create_member()
    first = await _claim(first_member, code, "k")

    await _merge(middle, first_member)
    await _merge(last, middle)
    again = await _claim(first_member, code, "k")

    assert again.replayed and again.claim.id == first.claim.id
    assert await BenefitClaim.all().count() == 1


async def test_an_order_retried_after_a_merge_is_recorded_once() -> None:
    merged, survivor = await create_member(), await create_member()
    await create_rule(points_per_unit=1)
    first = await record_order(merged.id, external_id="T-1")

    await _merge(survivor, merged)
    again = await record_order(merged.id, external_id="T-1", occurred_at=first.order.occurred_at)

    assert again.replayed and again.order.id == first.order.id
    assert again.points_earned == first.points_earned == 100
    assert await Order.all().count() == 1
    assert (await points.get_account(member_id=survivor.id)).balance == 100
    assert (await Member.get(id=survivor.id)).order_count == 1
