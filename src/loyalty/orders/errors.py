"""Expected failures of the orders domain."""

from __future__ import annotations

from loyalty.errors import ConflictError, DomainError, NotFoundError


class OrderNotFound(NotFoundError):
    code = "ORDER_NOT_FOUND"

    def __init__(self, key: object = None) -> None:
        super().__init__("order", key)


class OrderConflict(ConflictError):
    """The channel's order id was recorded before with different content. Nothing written."""

    code = "ORDER_CONFLICT"


class RefundConflict(ConflictError):
    """The refund id was used before with different content. Nothing written."""

    code = "REFUND_CONFLICT"


class RefundExceedsOrder(DomainError):
    """More would be refunded than was bought (or is still unrefunded). Nothing written."""

    code = "REFUND_EXCEEDS_ORDER"

    def __init__(self, *, line_no: int, requested: int, refundable: int) -> None:
        super().__init__(
            f"line {line_no}: {requested} requested, {refundable} left to refund",
            line_no=line_no,
            requested=requested,
            refundable=refundable,
        )
        self.line_no = line_no
        self.requested = requested
        self.refundable = refundable
