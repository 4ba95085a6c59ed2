"""Expected failures of the benefits domain."""

from __future__ import annotations

from loyalty.errors import ConflictError, DomainError, NotFoundError


class BenefitNotFound(NotFoundError):
    code = "BENEFIT_NOT_FOUND"

    def __init__(self, key: object = None) -> None:
        super().__init__("benefit", key)


class ClaimNotFound(NotFoundError):
    code = "BENEFIT_CLAIM_NOT_FOUND"

    def __init__(self, key: object = None) -> None:
        super().__init__("benefit claim", key)


class NotEntitled(DomainError):
    """The member's tier does not include the benefit."""

    code = "NOT_ENTITLED"

    def __init__(self, *, benefit_code: str, tier_code: str) -> None:
        super().__init__(
            f"tier {tier_code} is not entitled to {benefit_code}",
            benefit_code=benefit_code,
            tier_code=tier_code,
        )
        self.benefit_code = benefit_code
        self.tier_code = tier_code


class QuotaExhausted(DomainError):
    """Every use of the current period is taken."""

    code = "QUOTA_EXHAUSTED"

    def __init__(self, *, benefit_code: str, quota: int, renews_at: object) -> None:
        super().__init__(f"quota of {quota} for {benefit_code} is used up", quota=quota)
        self.benefit_code = benefit_code
        self.quota = quota
        self.renews_at = renews_at


class WrongChannel(DomainError):
    """The benefit cannot be used in this channel."""

    code = "WRONG_CHANNEL"

    def __init__(self, *, benefit_code: str, channel: str, allowed: list[str]) -> None:
        super().__init__(f"{benefit_code} cannot be used in {channel}", allowed=allowed)
        self.benefit_code = benefit_code
        self.channel = channel
        self.allowed = allowed


class ReservationNotActive(DomainError):
    """The reservation was already released, confirmed for another order, or timed out."""

    code = "RESERVATION_NOT_ACTIVE"

    def __init__(self, *, claim_id: int, status: str) -> None:
        super().__init__(f"reservation {claim_id} is {status}", status=status)
        self.claim_id = claim_id
        self.status = status


class IdempotencyConflict(ConflictError):
    code = "IDEMPOTENCY_CONFLICT"
