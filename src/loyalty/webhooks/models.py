"""Endpoints that receive domain events over HTTP."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class WebhookEndpoint(Model):
    """A receiver of domain events over HTTP, signed with its secret, while it is active.

    Every event whose kind it subscribes to is POSTed to ``url``."""

    id = fields.BigIntField(primary_key=True)
    url = fields.CharField(max_length=2000)
    secret = fields.CharField(max_length=128, description="HMAC-SHA256 key of the signatures")
    event_kinds = fields.JSONField(
        default=list, description="Subscribed event kinds (exact, or a family as member.*)"
    )
    active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField()
    deactivated_at = fields.DatetimeField(null=True)

    class Meta:
        table = "webhook_endpoint"
