"""Order factories: plain async functions with overrides, going through the service."""

from __future__ import annotations

import itertools
from typing import Any

from loyalty import clock
from loyalty.orders import service
from loyalty.orders.service import LineIn, OrderResult

_seq = itertools.count(1)


def line(sku: str = "SKU-1", quantity: int = 1, unit_price: int = 10_000, **extra: Any) -> LineIn:
    return LineIn(sku=sku, quantity=quantity, unit_price=unit_price, **extra)


async def record_order(member_id: int | None = None, **overrides: Any) -> OrderResult:
    """An order of one line (100.00 CNY) on POS, recorded through the service."""
    values: dict[str, Any] = {
        "channel": "POS",
        "external_id": f"T-{next(_seq)}",
        "occurred_at": clock.now(),
        "currency": "CNY",
        "lines": [line()],
        "member_id": member_id,
    }
    values.update(overrides)
    return await service.record(**values)
