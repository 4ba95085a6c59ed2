"""Outbox queries: what waits, what was sent, what died."""

from __future__ import annotations

import strawberry

from loyalty.graphql import permissions
from loyalty.graphql.context import Info
from loyalty.graphql.outbox.types import OutboxStats
from loyalty.outbox import service as outbox

permissions.register({"Query.outboxStats": permissions.ADMIN})


@strawberry.type
class OutboxQuery:
    @strawberry.field(
        description="Outbox rows by status and kind, and the age of the oldest unfinished one."
    )
    async def outbox_stats(self, info: Info) -> OutboxStats:
        return OutboxStats.from_domain(await outbox.stats())
