"""Claims: entitlement, channel and quota checks; periods; concurrency; reservations."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from loyalty import clock
from loyalty.benefits import periods, service
from loyalty.benefits.errors import (
    IdempotencyConflict,
    NotEntitled,
    QuotaExhausted,
    ReservationNotActive,
    WrongChannel,
)
from loyalty.benefits.models import BenefitClaim, BenefitCounter, ClaimStatus, QuotaPeriod
from loyalty.tiers.models import Tier
from tests.factories.benefits import create_benefit, entitle
from tests.factories.members import create_member
from tests.factories.tiers import place_on_tier

pytestmark = pytest.mark.usefixtures("ladder")


async def silver_member(ladder: dict[str, Tier]) -> int:
    member = await create_member()
    await place_on_tier(member.id, ladder["SILVER"])
    return member.id


async def test_claim_counts_a_use_and_is_idempotent(ladder: dict[str, Tier]) -> None:
    member_id = await silver_member(ladder)
    benefit = await create_benefit()
    await entitle("SILVER", benefit, period=QuotaPeriod.MONTH, quota=2)

    first = await service.claim(
        member_id=member_id, benefit_code=benefit.code, channel="APP", idempotency_key="k1"
    )
    again = await service.claim(
        member_id=member_id, benefit_code=benefit.code, channel="APP", idempotency_key="k1"
    )

    assert first.uses_left == 1 and not first.replayed
    assert again.replayed and again.claim.id == first.claim.id
    assert first.claim.status == ClaimStatus.CLAIMED and first.claim.tier_code == "SILVER"
    assert await BenefitClaim.filter(member_id=member_id).count() == 1
    [listed] = (await service.member_benefits(member_ids=[member_id]))[member_id]
    assert (listed.used, listed.uses_left) == (1, 1)
    assert listed.renews_at == datetime.fromisoformat("2026-03-31T16:00:00+00:00")
    with pytest.raises(IdempotencyConflict):
        await service.claim(
            member_id=member_id, benefit_code=benefit.code, channel="POS", idempotency_key="k1"
        )


async def test_not_entitled_and_wrong_channel(ladder: dict[str, Tier]) -> None:
    member_id = await silver_member(ladder)
    gold_only = await create_benefit()
    await entitle("GOLD", gold_only)
    online = await create_benefit(channels=["ONLINE_STORE"])
    await entitle("SILVER", online)

    with pytest.raises(NotEntitled) as not_entitled:
        await service.claim(
            member_id=member_id, benefit_code=gold_only.code, channel="APP", idempotency_key="a"
        )
    assert not_entitled.value.tier_code == "SILVER"
    with pytest.raises(WrongChannel) as wrong:
        await service.claim(
            member_id=member_id, benefit_code=online.code, channel="POS", idempotency_key="b"
        )
    assert wrong.value.allowed == ["ONLINE_STORE"]
    assert await BenefitClaim.all().count() == 0


@pytest.mark.parametrize(
    ("period", "last_moment", "next_period"),
    [
        # Shanghai is UTC+8: the business day ends at 16:00 UTC.
        (QuotaPeriod.DAY, "2026-03-15T15:59:59+00:00", "2026-03-15T16:00:00+00:00"),
        # ISO week: Sunday 2026-03-15 ends the week, Monday starts the next.
        (QuotaPeriod.WEEK, "2026-03-15T15:59:59+00:00", "2026-03-15T16:00:00+00:00"),
        (QuotaPeriod.MONTH, "2026-03-31T15:59:59+00:00", "2026-03-31T16:00:00+00:00"),
        (QuotaPeriod.YEAR, "2026-12-31T15:59:59+00:00", "2026-12-31T16:00:00+00:00"),
    ],
)
async def test_quota_renews_exactly_at_the_period_boundary(
    ladder: dict[str, Tier], period: QuotaPeriod, last_moment: str, next_period: str
) -> None:
    member_id = await silver_member(ladder)
    benefit = await create_benefit()
    await entitle("SILVER", benefit, period=period, quota=1)
    boundary = datetime.fromisoformat(next_period)

    with clock.frozen(datetime.fromisoformat(last_moment)):
        await service.claim(
            member_id=member_id, benefit_code=benefit.code, channel="APP", idempotency_key="1"
        )
        with pytest.raises(QuotaExhausted) as exhausted:
            await service.claim(
                member_id=member_id, benefit_code=benefit.code, channel="APP", idempotency_key="2"
            )
        assert exhausted.value.renews_at == boundary
    with clock.frozen(boundary):
        outcome = await service.claim(
            member_id=member_id, benefit_code=benefit.code, channel="APP", idempotency_key="2"
        )
    assert outcome.uses_left == 0
    assert await BenefitCounter.filter(member_id=member_id).count() == 2


async def test_lifetime_quota_never_renews(ladder: dict[str, Tier]) -> None:
    member_id = await silver_member(ladder)
    benefit = await create_benefit()
    await entitle("SILVER", benefit, period=QuotaPeriod.LIFETIME, quota=1)
    await service.claim(
        member_id=member_id, benefit_code=benefit.code, channel="APP", idempotency_key="1"
    )
    with clock.frozen(clock.now() + timedelta(days=3000)), pytest.raises(QuotaExhausted):
        await service.claim(
            member_id=member_id, benefit_code=benefit.code, channel="APP", idempotency_key="2"
        )
    assert periods.renews_at(QuotaPeriod.LIFETIME, clock.now()) is None


async def test_twenty_concurrent_claims_against_a_quota_of_four(ladder: dict[str, Tier]) -> None:
    member_id = await silver_member(ladder)
    benefit = await create_benefit()
    await entitle("SILVER", benefit, period=QuotaPeriod.DAY, quota=4)

    async def attempt(i: int) -> str:
        try:
            await service.claim(
                member_id=member_id, benefit_code=benefit.code, channel="APP",
                idempotency_key=f"c{i}",
            )  # fmt: skip
        except QuotaExhausted:
            return "exhausted"
        return "claimed"

    results = await asyncio.gather(*(attempt(i) for i in range(20)))

    assert results.count("claimed") == 4 and results.count("exhausted") == 16
    assert await BenefitClaim.filter(member_id=member_id).count() == 4
    counter = await BenefitCounter.get(member_id=member_id, benefit_id=benefit.id)
    assert counter.used == 4


async def test_concurrent_replays_of_one_key_take_one_use(ladder: dict[str, Tier]) -> None:
    member_id = await silver_member(ladder)
    benefit = await create_benefit()
    await entitle("SILVER", benefit, period=QuotaPeriod.DAY, quota=4)
    outcomes = await asyncio.gather(
        *(
            service.claim(
                member_id=member_id,
                benefit_code=benefit.code,
                channel="APP",
                idempotency_key="same",
            )
            for _ in range(8)
        )
    )
    assert len({o.claim.id for o in outcomes}) == 1
    assert (await BenefitCounter.get(member_id=member_id)).used == 1


async def test_reserve_then_timeout_releases_the_use(
    ladder: dict[str, Tier], worker: object, redis: object, now: datetime
) -> None:
    member_id = await silver_member(ladder)
    benefit = await create_benefit()
    await entitle("SILVER", benefit, period=QuotaPeriod.MONTH, quota=1)
    held = await service.reserve(
        member_id=member_id, benefit_code=benefit.code, channel="APP", idempotency_key="r1",
        hold_seconds=600,
    )  # fmt: skip
    assert held.claim.status == ClaimStatus.RESERVED and held.uses_left == 0
    with pytest.raises(QuotaExhausted):
        await service.claim(
            member_id=member_id, benefit_code=benefit.code, channel="APP", idempotency_key="c"
        )

    # Not due yet: the timeout job leaves it alone.
    await redis.enqueue_job("benefits_release_expired", _queue_name="loyalty:queue")  # type: ignore[attr-defined]
    await worker()  # type: ignore[operator]
    assert (await BenefitClaim.get(id=held.claim.id)).status == ClaimStatus.RESERVED

    clock.advance(timedelta(seconds=601))
    await redis.enqueue_job("benefits_release_expired", _queue_name="loyalty:queue")  # type: ignore[attr-defined]
    await worker()  # type: ignore[operator]

    row = await BenefitClaim.get(id=held.claim.id)
    assert row.status == ClaimStatus.RELEASED and row.released_at == clock.now()
    assert (await BenefitCounter.get(member_id=member_id)).used == 0
    with pytest.raises(ReservationNotActive) as late:
        await service.confirm(claim_id=held.claim.id, order_ref="ORDER-1")
    assert late.value.status == "RELEASED"
    again = await service.claim(
        member_id=member_id, benefit_code=benefit.code, channel="APP", idempotency_key="c"
    )
    assert again.uses_left == 0


async def test_confirm_binds_and_release_after_confirm_is_refused(
    ladder: dict[str, Tier],
) -> None:
    member_id = await silver_member(ladder)
    benefit = await create_benefit()
    await entitle("SILVER", benefit, period=QuotaPeriod.MONTH, quota=2)
    held = await service.reserve(
        member_id=member_id, benefit_code=benefit.code, channel="APP", idempotency_key="r"
    )
    confirmed = await service.confirm(claim_id=held.claim.id, order_ref="ORDER-9")
    assert confirmed.status == ClaimStatus.CONFIRMED
    assert (await service.confirm(claim_id=held.claim.id, order_ref="ORDER-9")).id == held.claim.id
    with pytest.raises(ReservationNotActive):
        await service.confirm(claim_id=held.claim.id, order_ref="ORDER-10")
    with pytest.raises(ReservationNotActive):
        await service.release(claim_id=held.claim.id)
    assert await service.release_expired() == 0
    assert (await BenefitCounter.get(member_id=member_id)).used == 1


async def test_release_gives_the_use_back_once(ladder: dict[str, Tier]) -> None:
    member_id = await silver_member(ladder)
    benefit = await create_benefit()
    await entitle("SILVER", benefit, period=QuotaPeriod.MONTH, quota=2)
    held = await service.reserve(
        member_id=member_id, benefit_code=benefit.code, channel="APP", idempotency_key="r"
    )
    await service.release(claim_id=held.claim.id)
    await service.release(claim_id=held.claim.id)
    assert (await BenefitCounter.get(member_id=member_id)).used == 0
