"""Expected failures of the tiers domain."""

from __future__ import annotations

from loyalty.errors import NotFoundError


class TierNotFound(NotFoundError):
    code = "TIER_NOT_FOUND"

    def __init__(self, key: object = None) -> None:
        super().__init__("tier", key)
