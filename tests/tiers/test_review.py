"""The daily review: downgrade after expiry per policy, retention, locks, notices."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from loyalty import clock
from loyalty.auth.principal import SYSTEM
from loyalty.events.models import Event
from loyalty.tiers import review, service
from loyalty.tiers.models import DowngradePolicy, MemberTier, Tier, TierChange
from tests.factories.members import create_member
from tests.factories.tiers import create_order, place_on_tier

pytestmark = pytest.mark.usefixtures("ladder")

DAY = timedelta(days=1)


async def tier_of(member_id: int) -> MemberTier:
    return await MemberTier.get(member_id=member_id).prefetch_related("tier")


async def test_tier_is_kept_until_it_expires_even_without_spend(
    ladder: dict[str, Tier],
) -> None:
    member = await create_member()
    await place_on_tier(member.id, ladder["GOLD"], expires_in=DAY)

    report = await review.review()

    assert (await tier_of(member.id)).tier.code == "GOLD"
    assert report.downgraded == 0


async def test_expired_member_who_still_qualifies_is_renewed(
    ladder: dict[str, Tier], now: datetime
) -> None:
    member = await create_member()
    await place_on_tier(member.id, ladder["GOLD"], expires_in=-DAY)
    await create_order(member.id, 800_000, occurred_at=now - timedelta(days=200))

    report = await review.review()

    row = await tier_of(member.id)
    assert row.tier.code == "GOLD"
    assert row.expires_at == now + timedelta(days=365)
    assert report.renewed == 1
    assert await TierChange.filter(member_id=member.id).count() == 0


async def test_expired_member_goes_one_tier_down_by_default(
    ladder: dict[str, Tier], now: datetime
) -> None:
    member = await create_member()
    await place_on_tier(member.id, ladder["DIAMOND"], expires_in=-DAY)
    await create_order(member.id, 10_000)

    report = await review.review()

    row = await tier_of(member.id)
    assert row.tier.code == "GOLD"
    assert row.since == now and row.expires_at == now + timedelta(days=365)
    [change] = await TierChange.filter(member_id=member.id)
    assert (change.from_code, change.to_code, change.reason) == ("DIAMOND", "GOLD", "REVIEW")
    assert report.downgraded == 1 and report.moves == {"DIAMOND->GOLD": 1}


async def test_recalculate_policy_moves_to_the_tier_the_member_qualifies_for(
    ladder: dict[str, Tier],
) -> None:
    await service.set_policy(downgrade_policy=DowngradePolicy.RECALCULATE)
    to_basic, to_silver = await create_member(), await create_member()
    await place_on_tier(to_basic.id, ladder["DIAMOND"], expires_in=-DAY)
    await place_on_tier(to_silver.id, ladder["DIAMOND"], expires_in=-DAY)
    await create_order(to_silver.id, 300_000)

    await review.review()

    assert (await tier_of(to_basic.id)).tier.code == "BASIC"
    assert (await tier_of(to_basic.id)).expires_at is None
    assert (await tier_of(to_silver.id)).tier.code == "SILVER"


async def test_spend_outside_the_window_does_not_retain(
    ladder: dict[str, Tier], now: datetime
) -> None:
    member = await create_member()
    await place_on_tier(member.id, ladder["SILVER"], expires_in=-DAY)
    await create_order(member.id, 500_000, occurred_at=now - timedelta(days=366))

    await review.review()

    assert (await tier_of(member.id)).tier.code == "BASIC"


async def test_locked_manual_tier_survives_review_until_the_lock_ends(
    ladder: dict[str, Tier], now: datetime
) -> None:
    member = await create_member()
    lock = now + timedelta(days=30)
    await service.assign(
        member_id=member.id, tier_code="DIAMOND", actor=SYSTEM, locked_until=lock, note="VIP"
    )
    # Even with the expiry passed, the lock holds.
    await MemberTier.filter(member_id=member.id).update(expires_at=now - DAY)
    await review.review()
    assert (await tier_of(member.id)).tier.code == "DIAMOND"

    with clock.frozen(lock + timedelta(seconds=1)):
        await review.review()
    assert (await tier_of(member.id)).tier.code == "GOLD"
    reasons = (
        await TierChange.filter(member_id=member.id)
        .order_by("id")
        .values_list("reason", "actor", "note")
    )
    assert [tuple(map(str, r)) for r in reasons] == [
        ("ADMIN", "system", "VIP"),
        ("REVIEW", "system", "None"),
    ]


async def test_manual_assignment_expires_no_earlier_than_its_lock(
    ladder: dict[str, Tier], now: datetime
) -> None:
    member = await create_member()
    lock = now + timedelta(days=500)
    standing = await service.assign(
        member_id=member.id, tier_code="GOLD", actor=SYSTEM, locked_until=lock
    )
    assert standing.tier.code == "GOLD"
    assert standing.expires_at == lock and standing.locked_until == lock


async def test_review_upgrades_members_the_order_hook_missed(ladder: dict[str, Tier]) -> None:
    member = await create_member()
    await create_order(member.id, 900_000)  # no hook ran (imported history)

    report = await review.review()

    assert (await tier_of(member.id)).tier.code == "GOLD"
    assert report.upgraded == 1


async def test_review_twice_changes_nothing_more(ladder: dict[str, Tier]) -> None:
    member = await create_member()
    await place_on_tier(member.id, ladder["GOLD"], expires_in=-DAY)
    first = await review.review()
    second = await review.review()
    assert first.downgraded == 1
    assert (second.downgraded, second.upgraded, second.renewed) == (0, 0, 0)


async def test_downgrade_notice_says_what_keeps_the_tier(
    ladder: dict[str, Tier], now: datetime
) -> None:
    await service.set_policy(notice_days=30)
    member, safe, later = await create_member(), await create_member(), await create_member()
    expires = now + timedelta(days=20)
    await place_on_tier(member.id, ladder["GOLD"], expires_in=timedelta(days=20))
    await place_on_tier(safe.id, ladder["GOLD"], expires_in=timedelta(days=20))
    await place_on_tier(later.id, ladder["GOLD"], expires_in=timedelta(days=31))
    # Still inside today's window but outside the window at expiry: it will not count.
    await create_order(member.id, 500_000, occurred_at=now - timedelta(days=350))
    await create_order(member.id, 120_000, occurred_at=now - timedelta(days=10))
    await create_order(safe.id, 800_000, occurred_at=now - timedelta(days=30))

    assert await review.send_notices() == 1
    assert await review.send_notices() == 0  # one notice per expiry

    event = await Event.get(kind="tier.downgrade_notice")
    assert event.member_id == member.id
    assert event.payload["tier"] == "GOLD"
    assert event.payload["needed"] == 800_000 - 120_000
    assert event.payload["keep_by"] == expires.astimezone(clock.business_zone()).date().isoformat()
    assert event.payload["downgrade_to"] == "SILVER"
