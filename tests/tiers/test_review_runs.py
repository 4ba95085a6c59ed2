"""The tier review as a fanned-out run: one review per member and business date."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from loyalty import clock, fanout
from loyalty.tiers.models import MemberTier, Tier, TierChange, TierReview
from loyalty.tiers.tasks import REVIEW
from loyalty.worker.models import RunStatus
from tests.factories.members import create_member
from tests.factories.tiers import create_order, place_on_tier

pytestmark = pytest.mark.usefixtures("ladder")

DAY = timedelta(days=1)


async def run_review(**kwargs: object) -> fanout.JobRun:  # type: ignore[name-defined]
    launch = await fanout.start(name=REVIEW, chunk_size=2, trigger="cli", **kwargs)  # type: ignore[arg-type]
    run = await fanout.run_inline(launch)
    assert run is not None
    return run


async def test_reviewing_a_date_twice_reviews_each_member_once(
    ladder: dict[str, Tier], now: datetime
) -> None:
    down = [await create_member() for _ in range(3)]
    for member in down:
        await place_on_tier(member.id, ladder["DIAMOND"], expires_in=-DAY)
    renewed = await create_member()
    await place_on_tier(renewed.id, ladder["GOLD"], expires_in=-DAY)
    await create_order(renewed.id, 800_000, occurred_at=now - timedelta(days=200))
    up = await create_member()
    await create_order(up.id, 800_000)
    idle = await create_member()

    first = await run_review(period=clock.today())
    # Later the same day the downgraded members' new tier is due again (a clock moved on):
    # a second review for the date still leaves them alone.
    await MemberTier.filter(member_id__in=[m.id for m in down]).update(expires_at=now - DAY)
    second = await run_review(period=clock.today())

    assert first.status is RunStatus.SUCCEEDED and first.chunks_total == 3
    assert first.counts == {"downgraded": 3, "renewed": 1, "upgraded": 1, "kept": 1}
    assert second.counts == {"already_reviewed": 5, "kept": 1}
    for member in down:
        [change] = await TierChange.filter(member_id=member.id)
        assert (change.from_code, change.to_code) == ("DIAMOND", "GOLD")
    assert await TierChange.filter(member_id=up.id).count() == 1
    assert await TierReview.filter(business_date=clock.today()).count() == 5
    assert not await TierReview.filter(member_id=idle.id).exists()


async def test_the_next_day_reviews_again(ladder: dict[str, Tier], now: datetime) -> None:
    member = await create_member()
    await place_on_tier(member.id, ladder["DIAMOND"], expires_in=-DAY)
    await run_review(period=clock.today() - DAY)
    await MemberTier.filter(member_id=member.id).update(expires_at=now - DAY)

    run = await run_review(period=clock.today())

    assert run.counts == {"downgraded": 1}
    assert [c.to_code for c in await TierChange.filter(member_id=member.id).order_by("id")] == [
        "GOLD",
        "SILVER",
    ]
