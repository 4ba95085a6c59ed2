"""Expected failures of the points domain."""

from __future__ import annotations

from loyalty.errors import ConflictError, DomainError, NotFoundError


class InsufficientPoints(DomainError):
    """The balance does not cover the request. Nothing was written."""

    code = "INSUFFICIENT_POINTS"

    def __init__(self, *, balance: int, requested: int) -> None:
        super().__init__(
            f"balance {balance} is less than the {requested} points requested",
            balance=balance,
            requested=requested,
        )
        self.balance = balance
        self.requested = requested


class IdempotencyConflict(ConflictError):
    """The idempotency key was used before for a different request. Nothing was written."""

    code = "IDEMPOTENCY_CONFLICT"


class EarningRuleNotFound(NotFoundError):
    code = "EARNING_RULE_NOT_FOUND"

    def __init__(self, key: object = None) -> None:
        super().__init__("earning rule", key)


class LedgerRace(Exception):
    """A guarded lot update found fewer points than it read (a bug or a concurrent writer that
    bypassed the account row); the transaction is rolled back and the caller retries."""
