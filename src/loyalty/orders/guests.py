"""Guest orders: kept with the identity they were placed with, attached to the member when that
identity is linked. Points are earned retroactively only for orders inside the program's
window (default 30 days); older ones count for the member's stats only."""

from __future__ import annotations

from datetime import timedelta

import structlog
from tortoise.backends.base.client import BaseDBAsyncClient

from loyalty import clock
from loyalty.orders.models import Order, OrderLine
from loyalty.orders.service import apply_member_effects
from loyalty.points.service import ledger, program

log = structlog.get_logger(__name__)


async def attach_guest_orders(
    conn: BaseDBAsyncClient, *, member_id: int, kind: str, scope: str | None, value: str
) -> list[int]:
    """Inside the linking transaction: give the member every guest order placed with this
    identity. Each attachment is a conditional UPDATE (``member_id IS NULL``), so an order is
    attached, and earns, once. Returns the attached order ids."""
    candidates = (
        await Order.filter(
            member_id=None,
            guest_identity_kind=kind,
            guest_identity_scope=scope or "",
            guest_identity_value=value,
        )
        .using_db(conn)
        .order_by("occurred_at", "id")
    )
    if not candidates:
        return []
    # The ledger's lock order: the member and its account before the orders.
    await ledger.lock_member(conn, member_id)
    await ledger.lock_account(conn, member_id)
    settings = await program.get_program(conn)
    window_start = clock.now() - timedelta(days=settings.guest_attach_window_days)
    attached: list[int] = []
    for order in candidates:
        won = (
            await Order.filter(id=order.id, member_id=None)
            .using_db(conn)
            .update(member_id=member_id, attached_at=clock.now())
        )
        if won != 1:
            continue
        order.member_id = member_id  # type: ignore[attr-defined]
        lines = list(await OrderLine.filter(order_id=order.id).using_db(conn).order_by("line_no"))
        await apply_member_effects(
            conn,
            order=order,
            lines=lines,
            member_id=member_id,
            settings=settings,
            earn=order.occurred_at >= window_start,
        )
        attached.append(order.id)
    if attached:
        log.info("orders.guest_attached", member_id=member_id, orders=len(attached))
    return attached
