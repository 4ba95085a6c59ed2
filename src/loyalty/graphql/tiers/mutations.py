"""Tier mutations: manage the ladder and the policy, assign tiers by hand."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from loyalty import errors as domain
from loyalty.graphql import permissions
from loyalty.graphql.context import Info
from loyalty.graphql.errors import NotFoundError, ValidationError
from loyalty.graphql.tiers.ids import member_pk
from loyalty.graphql.tiers.inputs import (
    AssignTierInput,
    SetTierPolicyInput,
    TierRuleInput,
    UpdateTierInput,
)
from loyalty.graphql.tiers.types import Tier, TierPolicy
from loyalty.tiers import service

permissions.register(
    {
        "Mutation.createTier": permissions.ADMIN,
        "Mutation.updateTier": permissions.ADMIN,
        "Mutation.setTierPolicy": permissions.ADMIN,
        "Mutation.assignTier": permissions.ADMIN,
    }
)


@strawberry.type(description="The tier was created or changed.")
class TierSuccess:
    tier: Tier = strawberry.field(description="The tier as stored.")


@strawberry.type(description="The policy was saved.")
class SetTierPolicySuccess:
    policy: TierPolicy = strawberry.field(description="The policy as stored.")


@strawberry.type(description="The member was put on the tier.")
class AssignTierSuccess:
    tier: Tier = strawberry.field(description="The member's tier now.")
    expires_at: datetime | None = strawberry.field(description="When it is reviewed (UTC).")
    locked_until: datetime | None = strawberry.field(description="Locked until (UTC).")


CreateTierResult = Annotated[
    TierSuccess | ValidationError,
    strawberry.union("CreateTierResult", description="Outcome of `createTier`."),
]
UpdateTierResult = Annotated[
    TierSuccess | ValidationError | NotFoundError,
    strawberry.union("UpdateTierResult", description="Outcome of `updateTier`."),
]
SetTierPolicyResult = Annotated[
    SetTierPolicySuccess | ValidationError,
    strawberry.union("SetTierPolicyResult", description="Outcome of `setTierPolicy`."),
]
AssignTierResult = Annotated[
    AssignTierSuccess | ValidationError | NotFoundError,
    strawberry.union("AssignTierResult", description="Outcome of `assignTier`."),
]


@strawberry.type
class TierMutation:
    @strawberry.mutation(
        description="Add a tier to the ladder. Members who qualify are upgraded shortly after "
        "(reason RULE_CHANGE); nobody is downgraded before review."
    )
    async def create_tier(self, info: Info, input: TierRuleInput) -> CreateTierResult:
        rule = input.to_rule()
        try:
            tier = await service.create_tier(**vars(rule), jobs=info.context.jobs)
        except domain.ValidationError as error:
            return ValidationError.from_domain(error)
        await info.context.jobs.flush()
        return TierSuccess(tier=Tier.from_model(tier))

    @strawberry.mutation(description="Change a tier; omitted fields keep their value.")
    async def update_tier(self, info: Info, input: UpdateTierInput) -> UpdateTierResult:
        changes = {
            name: (service.UNSET if value is strawberry.UNSET else value)
            for name, value in vars(input).items()
            if name != "code"
        }
        if changes.get("threshold") not in (None, service.UNSET):
            changes["threshold"] = int(changes["threshold"])
        try:
            tier = await service.update_tier(code=input.code, **changes, jobs=info.context.jobs)
        except domain.ValidationError as error:
            return ValidationError.from_domain(error)
        except domain.NotFoundError as error:
            return NotFoundError.from_domain(error)
        await info.context.jobs.flush()
        return TierSuccess(tier=Tier.from_model(tier))

    @strawberry.mutation(description="Set the downgrade policy and the notice days.")
    async def set_tier_policy(self, info: Info, input: SetTierPolicyInput) -> SetTierPolicyResult:
        try:
            policy = await service.set_policy(
                downgrade_policy=input.downgrade_policy, notice_days=input.notice_days
            )
        except domain.ValidationError as error:
            return ValidationError.from_domain(error)
        return SetTierPolicySuccess(policy=TierPolicy.from_model(policy))

    @strawberry.mutation(
        description="Put a member on a tier by hand (reason ADMIN), optionally locked until a "
        "date: reviews leave a locked tier alone, and it expires no earlier than the lock."
    )
    async def assign_tier(self, info: Info, input: AssignTierInput) -> AssignTierResult:
        try:
            standing = await service.assign(
                member_id=member_pk(info.context.principal, input.member_id),
                tier_code=input.tier_code,
                actor=info.context.principal,
                locked_until=input.locked_until,
                note=input.note,
            )
        except domain.ValidationError as error:
            return ValidationError.from_domain(error)
        except domain.NotFoundError as error:
            return NotFoundError.from_domain(error)
        except domain.DomainError as error:  # member not active
            return ValidationError.from_domain(
                domain.ValidationError(
                    domain.FieldError("input.memberId", error.message, error.code)
                )
            )
        return AssignTierSuccess(
            tier=Tier.from_model(standing.tier),
            expires_at=standing.expires_at,
            locked_until=standing.locked_until,
        )
