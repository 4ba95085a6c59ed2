"""Webhook queries: the endpoints."""

from __future__ import annotations

import strawberry

from loyalty.graphql import permissions
from loyalty.graphql.context import Info
from loyalty.graphql.webhooks.types import WebhookEndpoint
from loyalty.webhooks import service

permissions.register({"Query.webhookEndpoints": permissions.ADMIN})


@strawberry.type
class WebhookQuery:
    @strawberry.field(
        description="Webhook endpoints in creation order; `active` keeps only active (true) "
        "or deactivated (false) ones. Secrets are never shown."
    )
    async def webhook_endpoints(
        self, info: Info, active: bool | None = None
    ) -> list[WebhookEndpoint]:
        return [WebhookEndpoint.from_model(e) for e in await service.list_endpoints(active=active)]
