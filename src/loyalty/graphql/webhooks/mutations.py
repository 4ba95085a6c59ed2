"""Webhook mutations: add and deactivate endpoints."""

from __future__ import annotations

from typing import Annotated

import strawberry

from loyalty import errors as domain
from loyalty.graphql import ids, permissions
from loyalty.graphql.context import Info
from loyalty.graphql.errors import NotFoundError, ValidationError
from loyalty.graphql.webhooks.inputs import (
    CreateWebhookEndpointInput,
    DeactivateWebhookEndpointInput,
)
from loyalty.graphql.webhooks.types import WebhookEndpoint
from loyalty.webhooks import service
from loyalty.webhooks.errors import EndpointNotFound

permissions.register(
    {
        "Mutation.createWebhookEndpoint": permissions.ADMIN,
        "Mutation.deactivateWebhookEndpoint": permissions.ADMIN,
    }
)


@strawberry.type(description="The endpoint was added; it receives events from now on.")
class CreateWebhookEndpointSuccess:
    endpoint: WebhookEndpoint = strawberry.field(description="The endpoint as stored.")
    secret: str = strawberry.field(
        description="The signing secret. Shown here only: store it with the receiver."
    )


@strawberry.type(description="The endpoint is deactivated (or already was).")
class DeactivateWebhookEndpointSuccess:
    endpoint: WebhookEndpoint = strawberry.field(description="The endpoint as stored.")


CreateWebhookEndpointResult = Annotated[
    CreateWebhookEndpointSuccess | ValidationError,
    strawberry.union(
        "CreateWebhookEndpointResult", description="Outcome of `createWebhookEndpoint`."
    ),
]
DeactivateWebhookEndpointResult = Annotated[
    DeactivateWebhookEndpointSuccess | NotFoundError,
    strawberry.union(
        "DeactivateWebhookEndpointResult", description="Outcome of `deactivateWebhookEndpoint`."
    ),
]


@strawberry.type
class WebhookMutation:
    @strawberry.mutation(
        description="Add a webhook endpoint subscribed to event kinds. Events recorded from "
        "now on are delivered to it, signed, with retries and backoff."
    )
    async def create_webhook_endpoint(
        self, info: Info, input: CreateWebhookEndpointInput
    ) -> CreateWebhookEndpointResult:
        try:
            endpoint = await service.create_endpoint(
                url=input.url, event_kinds=input.event_kinds, secret=input.secret
            )
        except domain.ValidationError as error:
            return ValidationError.from_domain(error)
        return CreateWebhookEndpointSuccess(
            endpoint=WebhookEndpoint.from_model(endpoint), secret=endpoint.secret
        )

    @strawberry.mutation(
        description="Stop deliveries to an endpoint: new events skip it and deliveries still "
        "waiting end SUPPRESSED. Idempotent."
    )
    async def deactivate_webhook_endpoint(
        self, info: Info, input: DeactivateWebhookEndpointInput
    ) -> DeactivateWebhookEndpointResult:
        endpoint_id = ids.pk(str(input.id), "WebhookEndpoint")
        try:
            if endpoint_id is None:
                raise EndpointNotFound(input.id)
            endpoint = await service.deactivate_endpoint(endpoint_id=endpoint_id)
        except domain.NotFoundError as error:
            return NotFoundError.from_domain(error)
        return DeactivateWebhookEndpointSuccess(endpoint=WebhookEndpoint.from_model(endpoint))
