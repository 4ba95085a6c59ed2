"""Outbox mutations: send dead deliveries again."""

from __future__ import annotations

from typing import Annotated

import strawberry

from loyalty import errors as domain
from loyalty.graphql import permissions
from loyalty.graphql.context import Info
from loyalty.graphql.errors import ValidationError
from loyalty.outbox import service as outbox

permissions.register({"Mutation.retryDeadDeliveries": permissions.ADMIN})


@strawberry.type(description="The dead rows are due again.")
class RetryDeadDeliveriesSuccess:
    retried: int = strawberry.field(
        description="How many DEAD rows went back to PENDING with fresh attempts."
    )


RetryDeadDeliveriesResult = Annotated[
    RetryDeadDeliveriesSuccess | ValidationError,
    strawberry.union("RetryDeadDeliveriesResult", description="Outcome of `retryDeadDeliveries`."),
]


@strawberry.type
class OutboxMutation:
    @strawberry.mutation(
        description="Put DEAD outbox rows of `kind` (omitted: of every kind) back to PENDING "
        "with fresh attempts; they are delivered shortly after."
    )
    async def retry_dead_deliveries(
        self, info: Info, kind: str | None = None
    ) -> RetryDeadDeliveriesResult:
        try:
            retried = await outbox.retry_dead(kind=kind)
        except domain.ValidationError as error:
            return ValidationError.from_domain(error)
        if retried:
            info.context.jobs.defer("events_reconcile", job_id="events:reconcile:retried")
            await info.context.jobs.flush()
        return RetryDeadDeliveriesSuccess(retried=retried)
