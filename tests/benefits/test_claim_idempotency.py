"""A claim retried while its first attempt runs answers the first claim, at the last use too."""

from __future__ import annotations

import asyncio

import pytest

from loyalty.benefits import service
from loyalty.benefits.errors import QuotaExhausted
from loyalty.benefits.models import BenefitClaim, BenefitCounter, QuotaPeriod
from loyalty.tiers.models import Tier
from tests.factories.benefits import create_benefit, entitle
from tests.factories.members import create_member
from tests.factories.tiers import place_on_tier

pytestmark = pytest.mark.usefixtures("ladder")


@pytest.mark.parametrize("operation", ["claim", "reserve"])
@pytest.mark.parametrize("round_", range(3))
async def test_twin_claims_of_the_last_use_both_answer_the_first_claim(
    ladder: dict[str, Tier], operation: str, round_: int
) -> None:
    member = await create_member()
    await place_on_tier(member.id, ladder["SILVER"])
    benefit = await create_benefit()
    await entitle("SILVER", benefit, period=QuotaPeriod.MONTH, quota=2)
    await service.claim(
        member_id=member.id, benefit_code=benefit.code, channel="APP", idempotency_key="used"
    )
    take = getattr(service, operation)

    first, twin = await asyncio.gather(
        take(member_id=member.id, benefit_code=benefit.code, channel="APP", idempotency_key="k"),
        take(member_id=member.id, benefit_code=benefit.code, channel="APP", idempotency_key="k"),
        return_exceptions=True,
    )

    assert isinstance(first, service.ClaimOutcome), first
    assert isinstance(twin, service.ClaimOutcome), twin
    assert first.claim.id == twin.claim.id
    assert sorted([first.replayed, twin.replayed]) == [False, True]
    assert await BenefitClaim.filter(member_id=member.id).count() == 2
    counter = await BenefitCounter.get(member_id=member.id, benefit_id=benefit.id)
    assert counter.used == 2


async def test_another_key_at_the_last_use_is_still_refused(ladder: dict[str, Tier]) -> None:
    member = await create_member()
    await place_on_tier(member.id, ladder["SILVER"])
    benefit = await create_benefit()
    await entitle("SILVER", benefit, period=QuotaPeriod.MONTH, quota=1)

    outcomes = await asyncio.gather(
        *(
            service.claim(
                member_id=member.id, benefit_code=benefit.code, channel="APP", idempotency_key=key
            )
            for key in ("a", "b")
        ),
        return_exceptions=True,
    )

    assert sorted(type(o).__name__ for o in outcomes) == ["ClaimOutcome", "QuotaExhausted"]
    assert any(isinstance(o, QuotaExhausted) for o in outcomes)
    assert await BenefitClaim.filter(member_id=member.id).count() == 1
