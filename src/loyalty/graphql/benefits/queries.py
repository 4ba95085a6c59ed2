"""Benefit queries: the catalog and what each tier gets."""

from __future__ import annotations

import strawberry

from loyalty.benefits import service
from loyalty.graphql import permissions
from loyalty.graphql.benefits.types import Benefit, TierEntitlement
from loyalty.graphql.context import Info
from loyalty.tiers.errors import TierNotFound

permissions.register(
    {
        "Query.benefits": permissions.AUTHENTICATED,
        "Query.tierBenefits": permissions.AUTHENTICATED,
    }
)


@strawberry.type
class BenefitQuery:
    @strawberry.field(description="The benefit catalog (active entries; admins may ask for all).")
    async def benefits(self, info: Info, include_inactive: bool = False) -> list[Benefit]:
        from loyalty.auth.principal import Role

        everything = include_inactive and info.context.principal.role is Role.ADMIN
        return [Benefit.from_model(b) for b in await service.catalog(include_inactive=everything)]

    @strawberry.field(
        description="A tier's benefits, inherited ones included; empty for an unknown tier."
    )
    async def tier_benefits(self, info: Info, tier_code: str) -> list[TierEntitlement]:
        from loyalty.tiers import service as tiers

        try:
            tier = await tiers.get_tier(code=tier_code)
        except TierNotFound:
            return []
        return [TierEntitlement.from_domain(e) for e in await service.entitlements_of(tier=tier)]
