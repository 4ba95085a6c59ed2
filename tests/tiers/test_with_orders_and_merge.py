"""Upgrade through the orders service; merge, export and erase of tier and benefit data."""

from __future__ import annotations

from datetime import timedelta

import pytest
from tortoise.transactions import in_transaction

from loyalty import hooks
from loyalty.benefits import service as benefits
from loyalty.benefits.hooks import BenefitMemberData
from loyalty.benefits.models import BenefitClaim, BenefitCounter, QuotaPeriod
from loyalty.tiers import service
from loyalty.tiers.hooks import TierMemberData
from loyalty.tiers.models import MemberTier, Tier, TierChange
from tests.factories.benefits import create_benefit, entitle
from tests.factories.members import create_member
from tests.factories.orders import line, record_order
from tests.factories.tiers import create_order, place_on_tier

pytestmark = pytest.mark.usefixtures("ladder")


async def test_recording_a_qualifying_order_upgrades_in_its_transaction() -> None:
    member = await create_member()
    below = await record_order(member.id, lines=[line(unit_price=199_999)])
    assert below.tier_change is None
    result = await record_order(member.id, lines=[line(unit_price=1)])
    assert result.tier_change == {"from": "BASIC", "to": "SILVER"}
    change = await TierChange.get(member_id=member.id)
    assert change.order_id == result.order.id


async def test_every_member_referencing_model_has_a_handler() -> None:
    hooks.load()
    covered = {m for h in hooks.MEMBER_DATA_HANDLERS for m in h.models}
    assert {
        "loyalty.MemberTier", "loyalty.TierChange", "loyalty.BenefitCounter",
        "loyalty.BenefitClaim",
    } <= covered  # fmt: skip


async def test_merge_keeps_the_higher_tier_and_moves_history_and_claims(
    ladder: dict[str, Tier],
) -> None:
    survivor, merged = await create_member(), await create_member()
    await place_on_tier(survivor.id, ladder["SILVER"], expires_in=timedelta(days=10))
    await create_order(merged.id, 900_000, run_hooks=True)  # GOLD, with a history row
    benefit = await create_benefit()
    await entitle("SILVER", benefit, period=QuotaPeriod.MONTH, quota=5)
    for member_id in (survivor.id, merged.id):
        await benefits.claim(
            member_id=member_id, benefit_code=benefit.code, channel="APP", idempotency_key="same"
        )

    async with in_transaction() as conn:
        for handler in (TierMemberData(), BenefitMemberData()):
            await handler.merge(survivor_id=survivor.id, merged_id=merged.id, connection=conn)

    standing = await service.standing(member_id=survivor.id)
    assert standing.tier.code == "GOLD"
    assert not await MemberTier.filter(member_id=merged.id).exists()
    history = await TierChange.filter(member_id=survivor.id).order_by("id")
    assert [(c.from_code, c.to_code, c.reason) for c in history] == [
        ("BASIC", "GOLD", "ORDER"),
        ("SILVER", "GOLD", "MERGE"),
    ]
    keys = sorted(await BenefitClaim.filter(member_id=survivor.id).values_list(
        "key_member_id", "idempotency_key"
    ))  # fmt: skip
    assert keys == sorted([(survivor.id, "same"), (merged.id, "same")])
    [counter] = await BenefitCounter.filter(member_id__in=[survivor.id, merged.id])
    assert (counter.member_id, counter.used) == (survivor.id, 2)

    exported = await TierMemberData().export(member_id=survivor.id)
    assert exported["tier"]["tier"] == "GOLD" and len(exported["tier_history"]) == 2
    assert len((await BenefitMemberData().export(member_id=survivor.id))["benefit_claims"]) == 2


async def test_merge_keeps_the_survivors_tier_when_it_is_higher(ladder: dict[str, Tier]) -> None:
    survivor, merged = await create_member(), await create_member()
    await place_on_tier(survivor.id, ladder["DIAMOND"])
    await place_on_tier(merged.id, ladder["GOLD"])
    async with in_transaction() as conn:
        await TierMemberData().merge(survivor_id=survivor.id, merged_id=merged.id, connection=conn)
    assert (await service.standing(member_id=survivor.id)).tier.code == "DIAMOND"
    assert await TierChange.filter(member_id=survivor.id).count() == 0


async def test_erase_drops_notes_and_keeps_the_tier(ladder: dict[str, Tier]) -> None:
    from loyalty.auth.principal import SYSTEM

    member = await create_member()
    await service.assign(member_id=member.id, tier_code="GOLD", actor=SYSTEM, note="张三的邀请")
    async with in_transaction() as conn:
        await TierMemberData().erase(member_id=member.id, connection=conn)
    change = await TierChange.get(member_id=member.id)
    assert change.note is None and change.to_code == "GOLD"
    assert (await service.standing(member_id=member.id)).tier.code == "GOLD"
