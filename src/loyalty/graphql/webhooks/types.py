"""GraphQL types of the webhooks domain."""

from __future__ import annotations

from datetime import datetime

import strawberry

from loyalty.webhooks import models


@strawberry.type(
    description="A receiver of domain events: each event of a subscribed kind is POSTed to "
    "its URL as JSON with the headers `Idempotency-Key` (the same on every attempt), "
    "`X-Loyalty-Event` (the kind) and `X-Loyalty-Signature` (`sha256=` and the hex "
    "HMAC-SHA256 of the body with the endpoint's secret)."
)
class WebhookEndpoint:
    id: strawberry.ID = strawberry.field(description="The endpoint's number.")
    url: str = strawberry.field(description="Where deliveries are POSTed.")
    event_kinds: list[str] = strawberry.field(
        description="Subscribed event kinds: exact (`member.registered`) or a family (`points.*`)."
    )
    active: bool = strawberry.field(description="False once deactivated: nothing is sent.")
    created_at: datetime = strawberry.field(description="When it was added (UTC).")
    deactivated_at: datetime | None = strawberry.field(
        description="When it was deactivated (UTC); null while active."
    )

    @classmethod
    def from_model(cls, row: models.WebhookEndpoint) -> WebhookEndpoint:
        return cls(
            id=strawberry.ID(str(row.id)),
            url=row.url,
            event_kinds=list(row.event_kinds),
            active=row.active,
            created_at=row.created_at,
            deactivated_at=row.deactivated_at,
        )
