"""Inputs of the webhooks domain."""

from __future__ import annotations

import strawberry


@strawberry.input(description="A new webhook endpoint.")
class CreateWebhookEndpointInput:
    url: str = strawberry.field(
        description="Absolute http:// or https:// URL, at most 2000 characters, no credentials."
    )
    event_kinds: list[str] = strawberry.field(
        description="1–50 event kinds to receive: exact (`member.registered`) or a family "
        "(`points.*`)."
    )
    secret: str | None = strawberry.field(
        default=None,
        description="Signing secret, 16–128 printable characters without spaces; omitted: "
        "one is generated and returned once.",
    )


@strawberry.input(description="The webhook endpoint to deactivate.")
class DeactivateWebhookEndpointInput:
    id: strawberry.ID = strawberry.field(description="The endpoint's number.")
