"""GraphQL types of the delivery outbox."""

from __future__ import annotations

import strawberry

from loyalty.outbox import models
from loyalty.outbox import service as outbox

OutboxStatus = strawberry.enum(
    models.OutboxStatus,
    name="OutboxStatus",
    description="Where a delivery stands: PENDING (waiting for its first attempt), IN_FLIGHT "
    "(being sent), SENT, FAILED (retried at its next attempt), DEAD (given up, see its last "
    "error), SUPPRESSED (deliberately not sent).",
)


@strawberry.type(description="How many outbox rows of one kind are in one status.")
class OutboxCount:
    status: OutboxStatus = strawberry.field(description="The rows' status.")
    kind: str = strawberry.field(
        description="The rows' kind: a domain event (`member.registered`) or a delivery "
        "(`webhook.delivery`)."
    )
    count: int = strawberry.field(description="How many rows.")


@strawberry.type(description="How many outbox rows are in one status, all kinds together.")
class OutboxStatusCount:
    status: OutboxStatus = strawberry.field(description="The rows' status.")
    count: int = strawberry.field(description="How many rows.")


@strawberry.type(description="The delivery outbox right now.")
class OutboxStats:
    rows: list[OutboxCount] = strawberry.field(
        description="Rows by status and kind (only pairs that have rows), by status then kind."
    )
    by_status: list[OutboxStatusCount] = strawberry.field(
        description="Rows by status (only statuses that have rows)."
    )
    oldest_pending_age_seconds: float | None = strawberry.field(
        description="Seconds the oldest row not yet finished (PENDING, FAILED or IN_FLIGHT) "
        "has waited since it was written; null when none waits."
    )

    @classmethod
    def from_domain(cls, stats: outbox.OutboxStats) -> OutboxStats:
        order = list(models.OutboxStatus)
        pairs = sorted(stats.counts.items(), key=lambda i: (order.index(i[0][0]), i[0][1]))
        totals = stats.by_status()
        age = stats.oldest_pending_age
        return cls(
            rows=[
                OutboxCount(status=models.OutboxStatus(status), kind=kind, count=n)
                for (status, kind), n in pairs
            ],
            by_status=[
                OutboxStatusCount(status=status, count=totals[status.value])
                for status in order
                if status.value in totals
            ],
            oldest_pending_age_seconds=age.total_seconds() if age is not None else None,
        )
