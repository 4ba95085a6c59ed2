"""Points mutations: adapters from input to one service call and back."""

from __future__ import annotations

from typing import Annotated

import strawberry

from loyalty import errors as domain
from loyalty.auth.principal import Role
from loyalty.graphql import ids, permissions
from loyalty.graphql.context import Info
from loyalty.graphql.errors import (
    ConflictError,
    Forbidden,
    NotFoundError,
    ValidationError,
)
from loyalty.graphql.members.types import MemberNotActiveError
from loyalty.graphql.points.ids import member_pk
from loyalty.graphql.points.inputs import (
    AdjustPointsInput,
    EarningRuleInput,
    PointsProgramInput,
    RedeemPointsInput,
)
from loyalty.graphql.points.types import (
    EarningRule,
    InsufficientPointsError,
    PointsMovement,
    PointsProgram,
)
from loyalty.members.errors import MemberNotActive
from loyalty.points import notify, service
from loyalty.points.errors import IdempotencyConflict, InsufficientPoints
from loyalty.points.models import RuleKind

permissions.register(
    {
        "Mutation.redeemPoints": {Role.MEMBER, Role.SERVICE, Role.ADMIN},
        "Mutation.adjustPoints": permissions.ADMIN,
        "Mutation.saveEarningRule": permissions.ADMIN,
        "Mutation.updatePointsProgram": permissions.ADMIN,
    }
)


@strawberry.type(description="The points were spent (or had been: `replayed`).")
class RedeemPointsSuccess(PointsMovement):
    pass


@strawberry.type(description="The adjustment was written (or had been: `replayed`).")
class AdjustPointsSuccess(PointsMovement):
    pass


@strawberry.type(description="The rule was saved.")
class SaveEarningRuleSuccess:
    rule: EarningRule = strawberry.field(description="The rule as stored.")


@strawberry.type(description="The program settings were saved.")
class UpdatePointsProgramSuccess:
    program: PointsProgram = strawberry.field(description="The settings as stored.")


_MOVEMENT_ERRORS = (
    ValidationError | NotFoundError | ConflictError | InsufficientPointsError | MemberNotActiveError
)
RedeemPointsResult = Annotated[
    RedeemPointsSuccess | _MOVEMENT_ERRORS,
    strawberry.union("RedeemPointsResult", description="Outcome of `redeemPoints`."),
]
AdjustPointsResult = Annotated[
    AdjustPointsSuccess | _MOVEMENT_ERRORS,
    strawberry.union("AdjustPointsResult", description="Outcome of `adjustPoints`."),
]
SaveEarningRuleResult = Annotated[
    SaveEarningRuleSuccess | ValidationError | NotFoundError,
    strawberry.union("SaveEarningRuleResult", description="Outcome of `saveEarningRule`."),
]
UpdatePointsProgramResult = Annotated[
    UpdatePointsProgramSuccess | ValidationError,
    strawberry.union("UpdatePointsProgramResult", description="Outcome of `updatePointsProgram`."),
]


def _movement_error(error: Exception) -> _MOVEMENT_ERRORS:
    if isinstance(error, domain.ValidationError):
        return ValidationError.from_domain(error)
    if isinstance(error, domain.NotFoundError):
        return NotFoundError.from_domain(error)
    if isinstance(error, IdempotencyConflict):
        return ConflictError.from_domain(error)
    if isinstance(error, InsufficientPoints):
        return InsufficientPointsError.from_domain(error)
    if isinstance(error, MemberNotActive):
        return MemberNotActiveError(code=error.code, message=error.message)
    raise error


def program_type(program: service.Program) -> PointsProgram:
    return PointsProgram(
        expiry_months=program.expiry_months,
        pending_days=program.pending_days,
        guest_attach_window_days=program.guest_attach_window_days,
        per_order_cap=program.per_order_cap,
        per_day_cap=program.per_day_cap,
    )


@strawberry.type
class PointsMutation:
    @strawberry.mutation(
        description="Spend points, oldest expiry first. Idempotent per member on "
        "`idempotencyKey`; refused with `InsufficientPointsError` (nothing written) when the "
        "balance does not cover it. Member tokens spend their own points only."
    )
    async def redeem_points(self, info: Info, input: RedeemPointsInput) -> RedeemPointsResult:
        principal = info.context.principal
        try:
            member_id = member_pk(input.member_id) if input.member_id is not None else None
            if principal.role is Role.MEMBER:
                if member_id is not None and member_id != principal.member_id:
                    raise Forbidden("Members spend their own points only.")
                member_id = principal.member_id
            if member_id is None:
                raise domain.ValidationError(domain.FieldError("memberId", "required", "REQUIRED"))
            movement = await service.redeem(
                member_id=member_id,
                amount=input.amount,
                idempotency_key=input.idempotency_key,
                order_channel=input.order_channel.value if input.order_channel else None,
                order_external_id=input.order_external_id,
                actor=principal.subject,
                jobs=info.context.jobs,
            )
        except domain.DomainError as error:
            return _movement_error(error)
        await info.context.jobs.flush()
        if not movement.replayed:
            await notify.balance_changed(info.context.redis, [movement.member_id])
        return RedeemPointsSuccess(**vars(PointsMovement.from_domain(movement)))

    @strawberry.mutation(
        description="Admin correction with a required reason. Positive amounts add a lot; "
        "negative ones never take the balance below zero. Idempotent per member on "
        "`idempotencyKey`."
    )
    async def adjust_points(self, info: Info, input: AdjustPointsInput) -> AdjustPointsResult:
        try:
            movement = await service.adjust(
                actor=info.context.principal,
                member_id=member_pk(input.member_id),
                amount=input.amount,
                reason=input.reason,
                idempotency_key=input.idempotency_key,
                jobs=info.context.jobs,
            )
        except domain.DomainError as error:
            return _movement_error(error)
        await info.context.jobs.flush()
        if not movement.replayed:
            await notify.balance_changed(info.context.redis, [movement.member_id])
        return AdjustPointsSuccess(**vars(PointsMovement.from_domain(movement)))

    @strawberry.mutation(description="Create an earning rule, or change one (`id`).")
    async def save_earning_rule(self, info: Info, input: EarningRuleInput) -> SaveEarningRuleResult:
        rule_id = ids.pk(input.id, "EarningRule") if input.id is not None else None
        if input.id is not None and rule_id is None:
            return NotFoundError(code="EARNING_RULE_NOT_FOUND", message="earning rule not found")
        try:
            row = await service.save_rule(
                actor=info.context.principal,
                rule_id=rule_id,
                code=input.code,
                name=input.name,
                kind=RuleKind(input.kind.value),
                active=input.active,
                currency=input.currency,
                points_per_unit=input.points_per_unit,
                multiplier_permille=input.multiplier_permille,
                categories=[c.strip() for c in input.categories],
                channels=[c.value for c in input.channels],
                starts_at=input.starts_at,
                ends_at=input.ends_at,
                days_of_month=input.days_of_month,
                weekdays=input.weekdays,
            )
        except domain.ValidationError as error:
            return ValidationError.from_domain(error)
        except domain.NotFoundError as error:
            return NotFoundError.from_domain(error)
        return SaveEarningRuleSuccess(rule=EarningRule.from_model(row))

    @strawberry.mutation(description="Change the program's points tunables.")
    async def update_points_program(
        self, info: Info, input: PointsProgramInput
    ) -> UpdatePointsProgramResult:
        try:
            program = await service.update_program(
                actor=info.context.principal,
                expiry_months=input.expiry_months,
                pending_days=input.pending_days,
                guest_attach_window_days=input.guest_attach_window_days,
                per_order_cap=input.per_order_cap,
                per_day_cap=input.per_day_cap,
            )
        except domain.ValidationError as error:
            return ValidationError.from_domain(error)
        return UpdatePointsProgramSuccess(program=program_type(program))
