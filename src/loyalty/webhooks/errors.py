"""Expected failures of the webhooks domain."""

from __future__ import annotations

from typing import Any

from loyalty import errors


class EndpointNotFound(errors.NotFoundError):
    code = "WEBHOOK_ENDPOINT_NOT_FOUND"

    def __init__(self, key: Any = None) -> None:
        super().__init__("webhook endpoint", key)
