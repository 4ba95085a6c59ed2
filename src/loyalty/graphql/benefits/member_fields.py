"""Benefit fields of `Member`, batched per request through a loader."""

from __future__ import annotations

from typing import TYPE_CHECKING

import strawberry
from strawberry.dataloader import DataLoader

from loyalty.benefits import service
from loyalty.graphql.benefits.types import MemberBenefit
from loyalty.graphql.context import Info
from loyalty.graphql.tiers.member_fields import known_standings


@strawberry.type
class MemberBenefitFields:
    """Mixed into `Member`: ``self.id`` is the member's primary key."""

    if TYPE_CHECKING:
        id: int

    @strawberry.field(
        description="The member's benefits from their tier, with uses left this period and "
        "when they renew."
    )
    async def benefits(self, info: Info) -> list[MemberBenefit]:
        loaders = info.context.loaders

        async def batch(ids: list[int]) -> list[list[service.MemberBenefit]]:
            known = await known_standings(loaders, ids)
            found = await service.member_benefits(member_ids=ids, known=known)
            return [found.get(i, []) for i in ids]

        loader = loaders.get("benefits_by_member", lambda: DataLoader(batch))
        return [MemberBenefit.from_domain(b) for b in await loader.load(self.id)]
