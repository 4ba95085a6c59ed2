"""Benefit mutations: the catalog and entitlements (admins); claims and reservations."""

from __future__ import annotations

from typing import Annotated

import strawberry

from loyalty import errors as domain
from loyalty.benefits import errors, service
from loyalty.benefits.models import BenefitKind as DomainKind
from loyalty.benefits.models import QuotaPeriod as DomainPeriod
from loyalty.graphql import ids, permissions
from loyalty.graphql.benefits.inputs import (
    ClaimBenefitInput,
    ConfirmBenefitReservationInput,
    CreateBenefitInput,
    ReleaseBenefitReservationInput,
    ReserveBenefitInput,
    SetTierEntitlementInput,
    UpdateBenefitInput,
)
from loyalty.graphql.benefits.types import (
    Benefit,
    BenefitClaim,
    NotEntitledError,
    QuotaExhaustedError,
    ReservationNotActiveError,
    TierEntitlement,
    WrongChannelError,
)
from loyalty.graphql.context import Info
from loyalty.graphql.errors import ConflictError, NotFoundError, ValidationError
from loyalty.graphql.tiers.ids import member_pk

permissions.register(
    {
        "Mutation.createBenefit": permissions.ADMIN,
        "Mutation.updateBenefit": permissions.ADMIN,
        "Mutation.setTierEntitlement": permissions.ADMIN,
        "Mutation.claimBenefit": permissions.AUTHENTICATED,
        "Mutation.reserveBenefit": permissions.AUTHENTICATED,
        "Mutation.confirmBenefitReservation": permissions.AUTHENTICATED,
        "Mutation.releaseBenefitReservation": permissions.AUTHENTICATED,
    }
)


@strawberry.type(description="The benefit was created or changed.")
class BenefitSuccess:
    benefit: Benefit = strawberry.field(description="The benefit as stored.")


@strawberry.type(description="The entitlement was saved.")
class SetTierEntitlementSuccess:
    tier_code: str = strawberry.field(description="The tier.")
    entitlements: list[TierEntitlement] = strawberry.field(
        description="The tier's benefits now, inherited ones included."
    )


@strawberry.type(description="The benefit use was taken (or held).")
class ClaimBenefitSuccess:
    claim: BenefitClaim = strawberry.field(description="The claim or reservation.")
    uses_left: int | None = strawberry.field(
        description="Uses left this period after this one; null when unlimited or replayed."
    )
    replayed: bool = strawberry.field(
        description="True when the idempotency key had been used: nothing new was taken."
    )


@strawberry.type(description="The reservation changed.")
class BenefitReservationSuccess:
    claim: BenefitClaim = strawberry.field(description="The reservation now.")


BenefitResult = Annotated[
    BenefitSuccess | ValidationError | NotFoundError,
    strawberry.union("BenefitResult", description="Outcome of `createBenefit`/`updateBenefit`."),
]
SetTierEntitlementResult = Annotated[
    SetTierEntitlementSuccess | ValidationError | NotFoundError,
    strawberry.union("SetTierEntitlementResult", description="Outcome of `setTierEntitlement`."),
]
ClaimBenefitResult = Annotated[
    ClaimBenefitSuccess
    | ValidationError
    | NotFoundError
    | ConflictError
    | NotEntitledError
    | QuotaExhaustedError
    | WrongChannelError,
    strawberry.union(
        "ClaimBenefitResult", description="Outcome of `claimBenefit` and `reserveBenefit`."
    ),
]
BenefitReservationResult = Annotated[
    BenefitReservationSuccess | ValidationError | NotFoundError | ReservationNotActiveError,
    strawberry.union(
        "BenefitReservationResult",
        description="Outcome of `confirmBenefitReservation` and `releaseBenefitReservation`.",
    ),
]


def _claim_error(error: domain.DomainError) -> ClaimBenefitResult:
    if isinstance(error, errors.NotEntitled):
        return NotEntitledError.from_domain(error)
    if isinstance(error, errors.QuotaExhausted):
        return QuotaExhaustedError.from_domain(error)
    if isinstance(error, errors.WrongChannel):
        return WrongChannelError.from_domain(error)
    if isinstance(error, domain.ValidationError):
        return ValidationError.from_domain(error)
    if isinstance(error, domain.NotFoundError):
        return NotFoundError.from_domain(error)
    if isinstance(error, domain.ConflictError):
        return ConflictError.from_domain(error)
    # An erased or deactivated member cannot claim (a merged one claims through its
    # survivor): answer as for an unknown member.
    return NotFoundError(code="MEMBER_NOT_FOUND", message="member not found")


async def _visible_claim(info: Info, raw_id: str) -> int:
    """The claim id, if the caller may reach its member; ClaimNotFound otherwise."""
    claim_id = ids.pk(raw_id, "Claim")
    if claim_id is None:
        raise errors.ClaimNotFound(raw_id)
    row = await service.get_claim(claim_id=claim_id)
    if not permissions.ensure_member_access(info.context.principal, row.member_id):  # type: ignore[attr-defined]
        raise errors.ClaimNotFound(raw_id)
    return claim_id


@strawberry.type
class BenefitMutation:
    @strawberry.mutation(description="Add a benefit to the catalog (config checked per kind).")
    async def create_benefit(self, info: Info, input: CreateBenefitInput) -> BenefitResult:
        try:
            benefit = await service.create_benefit(
                code=input.code,
                name=input.name,
                kind=DomainKind(input.kind.value),
                config=input.config,
                channels=[c.value for c in input.channels],
                description=input.description,
            )
        except domain.ValidationError as error:
            return ValidationError.from_domain(error)
        return BenefitSuccess(benefit=Benefit.from_model(benefit))

    @strawberry.mutation(description="Change a benefit; omitted fields keep their value.")
    async def update_benefit(self, info: Info, input: UpdateBenefitInput) -> BenefitResult:
        try:
            benefit = await service.update_benefit(
                code=input.code,
                name=input.name,
                config=input.config,
                channels=[c.value for c in input.channels] if input.channels is not None else None,
                description=input.description,
                active=input.active,
            )
        except domain.ValidationError as error:
            return ValidationError.from_domain(error)
        except domain.NotFoundError as error:
            return NotFoundError.from_domain(error)
        return BenefitSuccess(benefit=Benefit.from_model(benefit))

    @strawberry.mutation(
        description="Grant a benefit to a tier with a quota per period (higher tiers inherit "
        "it unless they set their own), or withdraw an inherited one with `excluded`."
    )
    async def set_tier_entitlement(
        self, info: Info, input: SetTierEntitlementInput
    ) -> SetTierEntitlementResult:
        from loyalty.tiers import service as tiers

        try:
            await service.set_entitlement(
                tier_code=input.tier_code,
                benefit_code=input.benefit_code,
                period=DomainPeriod(input.period.value),
                quota=input.quota,
                excluded=input.excluded,
            )
            tier = await tiers.get_tier(code=input.tier_code)
        except domain.ValidationError as error:
            return ValidationError.from_domain(error)
        except domain.NotFoundError as error:
            return NotFoundError.from_domain(error)
        return SetTierEntitlementSuccess(
            tier_code=tier.code,
            entitlements=[
                TierEntitlement.from_domain(e) for e in await service.entitlements_of(tier=tier)
            ],
        )

    @strawberry.mutation(
        description="Use a benefit now. Idempotent on (member, idempotencyKey). A member token "
        "may claim only for itself; a channel API key only in its channel."
    )
    async def claim_benefit(self, info: Info, input: ClaimBenefitInput) -> ClaimBenefitResult:
        try:
            outcome = await service.claim(
                member_id=member_pk(info.context.principal, input.member_id),
                benefit_code=input.benefit_code,
                channel=input.channel.value,
                idempotency_key=input.idempotency_key,
            )
        except domain.DomainError as error:
            return _claim_error(error)
        return ClaimBenefitSuccess(
            claim=BenefitClaim.from_model(outcome.claim, outcome.benefit.code),
            uses_left=outcome.uses_left,
            replayed=outcome.replayed,
        )

    @strawberry.mutation(
        description="Hold one use for a two-step checkout: confirm it with the order, or "
        "release it; an unconfirmed hold is released after `holdSeconds`."
    )
    async def reserve_benefit(self, info: Info, input: ReserveBenefitInput) -> ClaimBenefitResult:
        try:
            outcome = await service.reserve(
                member_id=member_pk(info.context.principal, input.member_id),
                benefit_code=input.benefit_code,
                channel=input.channel.value,
                idempotency_key=input.idempotency_key,
                hold_seconds=input.hold_seconds,
                jobs=info.context.jobs,
            )
        except domain.DomainError as error:
            return _claim_error(error)
        await info.context.jobs.flush()
        return ClaimBenefitSuccess(
            claim=BenefitClaim.from_model(outcome.claim, outcome.benefit.code),
            uses_left=outcome.uses_left,
            replayed=outcome.replayed,
        )

    @strawberry.mutation(description="Bind a live reservation to an order (idempotent).")
    async def confirm_benefit_reservation(
        self, info: Info, input: ConfirmBenefitReservationInput
    ) -> BenefitReservationResult:
        try:
            claim_id = await _visible_claim(info, str(input.claim_id))
            row = await service.confirm(claim_id=claim_id, order_ref=input.order_ref)
        except errors.ReservationNotActive as error:
            return ReservationNotActiveError.from_domain(error)
        except domain.ValidationError as error:
            return ValidationError.from_domain(error)
        except domain.NotFoundError as error:
            return NotFoundError.from_domain(error)
        return BenefitReservationSuccess(claim=BenefitClaim.from_model(row, row.benefit.code))

    @strawberry.mutation(description="Give a reserved use back (idempotent).")
    async def release_benefit_reservation(
        self, info: Info, input: ReleaseBenefitReservationInput
    ) -> BenefitReservationResult:
        try:
            claim_id = await _visible_claim(info, str(input.claim_id))
            row = await service.release(claim_id=claim_id)
        except errors.ReservationNotActive as error:
            return ReservationNotActiveError.from_domain(error)
        except domain.NotFoundError as error:
            return NotFoundError.from_domain(error)
        return BenefitReservationSuccess(claim=BenefitClaim.from_model(row, row.benefit.code))
