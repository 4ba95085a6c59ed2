"""Benefit fields of `Member`, batched per request through a loader."""

from __future__ import annotations

from typing import TYPE_CHECKING

import strawberry
from strawberry.dataloader import DataLoader

from loyalty.benefits import service
from loyalty.graphql.benefits.types import MemberBenefit
from loyalty.graphql.context import Info


async def _benefits(ids: list[int]) -> list[list[service.MemberBenefit]]:
    found = await service.member_benefits(member_ids=ids)
    return [found.get(i, []) for i in ids]


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
        loader = info.context.loaders.get("benefits_by_member", lambda: DataLoader(_benefits))
        return [MemberBenefit.from_domain(b) for b in await loader.load(self.id)]
