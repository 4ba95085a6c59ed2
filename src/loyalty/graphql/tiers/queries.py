"""Tier queries: the ladder, the policy, and the what-if preview."""

from __future__ import annotations

from typing import Annotated

import strawberry

from loyalty import errors as domain
from loyalty.graphql import permissions
from loyalty.graphql.context import Info
from loyalty.graphql.errors import ValidationError
from loyalty.graphql.tiers.inputs import TierRuleInput
from loyalty.graphql.tiers.types import Tier, TierPolicy, TierRulePreview
from loyalty.tiers import preview, service

permissions.register(
    {
        "Query.tiers": permissions.AUTHENTICATED,
        "Query.tierPolicy": permissions.ADMIN,
        "Query.previewTierRules": permissions.ADMIN,
    }
)

PreviewTierRulesResult = Annotated[
    TierRulePreview | ValidationError,
    strawberry.union("PreviewTierRulesResult", description="Outcome of `previewTierRules`."),
]


@strawberry.type
class TierQuery:
    @strawberry.field(description="The tier ladder, lowest rank first.")
    async def tiers(self, info: Info) -> list[Tier]:
        return [Tier.from_model(t) for t in await service.ladder()]

    @strawberry.field(description="Program-wide tier settings.")
    async def tier_policy(self, info: Info) -> TierPolicy:
        return TierPolicy.from_model(await service.get_policy())

    @strawberry.field(
        description="What-if: how many members a proposed ladder would move up, down or leave "
        "in place, per tier, over today's data (one SQL statement; nothing is written)."
    )
    async def preview_tier_rules(
        self, info: Info, rules: list[TierRuleInput]
    ) -> PreviewTierRulesResult:
        try:
            result = await preview.preview(rules=[r.to_rule() for r in rules])
        except domain.ValidationError as error:
            return ValidationError.from_domain(error)
        return TierRulePreview.from_domain(result)
