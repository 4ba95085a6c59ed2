"""Tiers' part in other domains' work: upgrade on orders, the points multiplier, member data."""

from __future__ import annotations

from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q, Subquery

from loyalty import clock, hooks
from loyalty.members import service as member_service
from loyalty.tiers import service
from loyalty.tiers.models import ChangeReason, MemberTier, Tier, TierChange, TierReview


async def upgrade_on_order(
    facts: hooks.OrderFacts, connection: BaseDBAsyncClient
) -> dict[str, Any] | None:
    """Upgrade in the order's transaction when the order qualifies; a refund never downgrades
    here (the review does, after the tier expires)."""
    if facts.is_refund or facts.member_id is None:
        return None
    change = await service.upgrade_if_qualified(
        member_id=facts.member_id,
        connection=connection,
        reason=ChangeReason.ORDER,
        order_id=facts.order_id,
    )
    if change is None:
        return None
    return {"tier_change": {"from": change.from_code, "to": change.to_code}}


async def tier_multiplier(member_id: int, connection: BaseDBAsyncClient | None) -> int:
    """The member's tier points multiplier in per-mille (1000 = x1)."""
    return await service.multiplier(member_id=member_id, connection=connection)


class TierMemberData:
    """Merge: the survivor keeps the higher tier (and the later expiry and lock on a tie);
    histories move. Erase: free-text notes go; tiers and dates stay."""

    models: tuple[str, ...] = ("loyalty.MemberTier", "loyalty.TierChange", "loyalty.TierReview")

    async def merge(
        self, *, survivor_id: int, merged_id: int, connection: BaseDBAsyncClient
    ) -> None:
        # The survivor's own reviews stand; the merged member is never reviewed again.
        await TierReview.filter(member_id=merged_id).using_db(connection).delete()
        await (
            TierChange.filter(member_id=merged_id)
            .using_db(connection)
            .update(member_id=survivor_id)
        )
        gone = await MemberTier.filter(member_id=merged_id).using_db(connection).first()
        if gone is None:
            return
        await MemberTier.filter(id=gone.id).using_db(connection).delete()
        mine = await service.standing(member_id=survivor_id, connection=connection)
        theirs = await Tier.filter(id=gone.tier_id).using_db(connection).get()  # type: ignore[attr-defined]
        if theirs.rank < mine.tier.rank:
            return
        if theirs.id == mine.tier.id:
            await (
                MemberTier.filter(member_id=survivor_id)
                .using_db(connection)
                .update(
                    # No expiry means "never": it wins. No lock means "none": any lock wins.
                    expires_at=None
                    if mine.expires_at is None or gone.expires_at is None
                    else max(mine.expires_at, gone.expires_at),
                    locked_until=max(
                        (d for d in (mine.locked_until, gone.locked_until) if d is not None),
                        default=None,
                    ),
                )
            )
            return
        await MemberTier.bulk_create(
            [MemberTier(member_id=survivor_id, tier_id=mine.tier.id, since=clock.now())],
            ignore_conflicts=True,
            using_db=connection,
        )
        await (
            MemberTier.filter(member_id=survivor_id)
            .using_db(connection)
            .update(
                tier_id=theirs.id,
                since=gone.since,
                expires_at=gone.expires_at,
                locked_until=gone.locked_until,
            )
        )
        await TierChange.create(
            using_db=connection,
            member_id=survivor_id,
            from_code=mine.tier.code,
            to_code=theirs.code,
            reason=ChangeReason.MERGE,
            actor=service.SYSTEM_ACTOR,
            note=f"merged member {merged_id}",
            at=clock.now(),
        )

    async def export(self, *, member_id: int) -> dict[str, Any]:
        row = await MemberTier.get_or_none(member_id=member_id).prefetch_related("tier")
        changes = await TierChange.filter(member_id=member_id).order_by("at", "id")
        return {
            "tier": None
            if row is None
            else {
                "tier": row.tier.code,
                "since": row.since.isoformat(),
                "expires_at": row.expires_at.isoformat() if row.expires_at else None,
                "locked_until": row.locked_until.isoformat() if row.locked_until else None,
            },
            "tier_reviews": [
                {"date": r.business_date.isoformat(), "outcome": r.outcome}
                for r in await TierReview.filter(member_id=member_id).order_by("business_date")
            ],
            "tier_history": [
                {
                    "from": c.from_code,
                    "to": c.to_code,
                    "reason": str(c.reason),
                    "at": c.at.isoformat(),
                    "order_id": c.order_id,
                }
                for c in changes
            ],
        }

    async def erase(self, *, member_id: int, connection: BaseDBAsyncClient) -> None:
        await TierChange.filter(member_id=member_id).using_db(connection).update(note=None)


async def members_on_tier(code: str) -> Q:
    """Members holding tier ``code``, for the member search. Members who never left the
    entry tier have no ``member_tier`` row, so the entry tier also matches those."""
    holders = Q(id__in=Subquery(MemberTier.filter(tier__code=code).values("member_id")))
    entry = await Tier.all().order_by("rank").first()
    if entry is None or entry.code != code:
        return holders
    without_row = Q(id__not_in=Subquery(MemberTier.all().values("member_id")))
    return Q(holders, without_row, join_type=Q.OR)


member_service.EXTERNAL_FILTERS["tier"] = members_on_tier
hooks.ORDER_HOOKS.append(upgrade_on_order)
hooks.MULTIPLIER_PROVIDERS.append(tier_multiplier)
hooks.register_member_data(TierMemberData())
