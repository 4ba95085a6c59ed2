"""Points queries: rules, program settings, simulation, and the finance view."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from loyalty import clock
from loyalty import errors as domain
from loyalty.graphql import permissions
from loyalty.graphql.context import Info
from loyalty.graphql.errors import NotFoundError, ValidationError
from loyalty.graphql.points.ids import member_pk
from loyalty.graphql.points.inputs import SimulateEarnInput
from loyalty.graphql.points.mutations import program_type
from loyalty.graphql.points.types import (
    EarningRule,
    EarnSimulation,
    LiabilityByExpiry,
    PointsFlow,
    PointsLiability,
    PointsProgram,
    RuleOutcome,
)
from loyalty.orders import service as orders
from loyalty.points import service

permissions.register(
    {
        "Query.earningRules": permissions.STAFF,
        "Query.pointsProgram": permissions.STAFF,
        "Query.simulateEarn": permissions.STAFF_OR_SERVICE,
        "Query.pointsLiability": permissions.ADMIN,
    }
)

SimulateEarnResult = Annotated[
    EarnSimulation | ValidationError | NotFoundError,
    strawberry.union("SimulateEarnResult", description="Outcome of `simulateEarn`."),
]


@strawberry.type
class PointsQuery:
    @strawberry.field(description="Every earning rule, in creation order.")
    async def earning_rules(self, info: Info) -> list[EarningRule]:
        return [EarningRule.from_model(row) for row in await service.list_rules()]

    @strawberry.field(description="The program's points tunables.")
    async def points_program(self, info: Info) -> PointsProgram:
        return program_type(await service.get_program())

    @strawberry.field(
        description="Dry run of the earning rules for an order: the points (rounded down once "
        "per order, then capped) and every rule with why it did or did not apply."
    )
    async def simulate_earn(self, info: Info, input: SimulateEarnInput) -> SimulateEarnResult:
        try:
            simulation = await orders.simulate(
                channel=input.channel.value,
                occurred_at=input.occurred_at or clock.now(),
                currency=input.currency,
                lines=[
                    orders.LineIn(
                        sku=line.sku,
                        quantity=line.quantity,
                        unit_price=line.unit_price,
                        name=line.name,
                        category=line.category,
                    )
                    for line in input.lines
                ],
                member_id=member_pk(input.member_id) if input.member_id else None,
                discount_total=input.discount_total,
                points_payment=input.points_payment,
            )
        except domain.ValidationError as error:
            return ValidationError.from_domain(error)
        except domain.NotFoundError as error:
            return NotFoundError.from_domain(error)
        calc = simulation.calculation
        return EarnSimulation(
            points=calc.points,
            uncapped_points=calc.uncapped,
            capped_by=calc.capped_by,
            paid_amount=simulation.paid_amount,
            tier_multiplier_permille=calc.tier_permille,
            pending=simulation.pending_days > 0 and calc.points > 0,
            rules=[
                RuleOutcome(
                    code=o.code, kind=o.kind, applied=o.applied, reason=o.reason, detail=o.detail
                )
                for o in calc.outcomes
            ],
        )

    @strawberry.field(
        description="Finance view: outstanding points by expiry month, pending and owed "
        "points, and points issued, redeemed, expired (breakage), reversed per month of "
        "`since`–`until` (business time zone)."
    )
    async def points_liability(
        self, info: Info, since: datetime | None = None, until: datetime | None = None
    ) -> PointsLiability:
        result = await service.liability(since=since, until=until)
        return PointsLiability(
            outstanding=result.outstanding_total,
            pending=result.pending_total,
            debt=result.debt_total,
            by_expiry_month=[
                LiabilityByExpiry(month=month, points=points)
                for month, points in result.by_expiry_month
            ],
            flows=[
                PointsFlow(
                    month=f.month,
                    issued=f.issued,
                    redeemed=f.redeemed,
                    expired=f.expired,
                    reversed=f.reversed,
                    adjusted_down=f.adjusted_down,
                )
                for f in result.flows
            ],
        )
