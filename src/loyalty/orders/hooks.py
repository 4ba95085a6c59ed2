"""Orders' extension points: guest orders attach when an identity is linked; orders take part
in member merge, export and erasure."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from loyalty import hooks
from loyalty.orders.guests import attach_guest_orders
from loyalty.orders.models import MemberCategoryStat, Order, OrderLine, Refund
from loyalty.orders.service import upsert_categories


async def on_identity_linked(
    member_id: int, kind: str, scope: str | None, value: str, connection: BaseDBAsyncClient
) -> None:
    await attach_guest_orders(connection, member_id=member_id, kind=kind, scope=scope, value=value)


class OrderData:
    """Orders and refunds move to the survivor; category stats add up."""

    models = ("loyalty.Order", "loyalty.Refund", "loyalty.MemberCategoryStat")

    async def lock(
        self, *, survivor_id: int, merged_id: int, connection: BaseDBAsyncClient
    ) -> None:
        # The merged member's orders, after the points accounts and before any lot moves.
        await (
            Order.filter(member_id=merged_id)
            .select_for_update(no_key=True)
            .only("id")
            .using_db(connection)
        )

    async def merge(
        self, *, survivor_id: int, merged_id: int, connection: BaseDBAsyncClient
    ) -> None:
        conn = connection
        await Order.filter(member_id=merged_id).using_db(conn).update(member_id=survivor_id)
        await Refund.filter(member_id=merged_id).using_db(conn).update(member_id=survivor_id)
        rows = await MemberCategoryStat.filter(member_id=merged_id).using_db(conn)
        if not rows:
            return
        per_category: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        counts: dict[str, int] = {}
        for row in rows:
            per_category[row.category] = [row.spend, row.quantity]
            counts[row.category] = row.order_count
        await MemberCategoryStat.filter(member_id=merged_id).using_db(conn).delete()
        # Order counts differ per category: one upsert per distinct count keeps it exact.
        by_count: dict[int, dict[str, list[int]]] = defaultdict(dict)
        for category, amounts in per_category.items():
            by_count[counts[category]][category] = amounts
        for count, group in by_count.items():
            await upsert_categories(conn, survivor_id, group, orders=count)

    async def export(self, *, member_id: int) -> dict[str, Any]:
        orders = await Order.filter(member_id=member_id).order_by("occurred_at", "id")
        lines: dict[int, list[OrderLine]] = defaultdict(list)
        for line in await OrderLine.filter(order_id__in=[o.id for o in orders]).order_by(
            "order_id", "line_no"
        ):
            lines[line.order_id].append(line)  # type: ignore[attr-defined]
        refunds = await Refund.filter(member_id=member_id).order_by("id")
        return {
            "orders": [
                {
                    "id": o.id,
                    "channel": o.channel,
                    "external_id": o.external_id,
                    "store_id": o.store_id,
                    "occurred_at": o.occurred_at.isoformat(),
                    "currency": o.currency,
                    "subtotal": o.subtotal,
                    "discount_total": o.discount_total,
                    "points_payment": o.points_payment,
                    "paid_amount": o.paid_amount,
                    "refunded_amount": o.refunded_amount,
                    "points_earned": o.points_earned,
                    "lines": [
                        {
                            "line_no": line.line_no,
                            "sku": line.sku,
                            "name": line.name,
                            "category": line.category,
                            "quantity": line.quantity,
                            "unit_price": line.unit_price,
                            "refunded_quantity": line.refunded_quantity,
                        }
                        for line in lines[o.id]
                    ],
                }
                for o in orders
            ],
            "refunds": [
                {
                    "order_id": r.order_id,  # type: ignore[attr-defined]
                    "external_id": r.external_id,
                    "amount": r.amount,
                    "points_reversed": r.points_reversed,
                    "created_at": r.created_at.isoformat(),
                }
                for r in refunds
            ],
        }

    async def erase(self, *, member_id: int, connection: BaseDBAsyncClient) -> None:
        # Amounts and SKUs stay for the books; the identity a guest order was placed with
        # and free-text line names go.
        await (
            Order.filter(member_id=member_id)
            .using_db(connection)
            .update(guest_identity_value=None, guest_identity_kind=None, guest_identity_scope=None)
        )
        order_ids = (
            await Order.filter(member_id=member_id)
            .using_db(connection)
            .values_list("id", flat=True)
        )
        if order_ids:
            await (
                OrderLine.filter(order_id__in=list(order_ids))
                .using_db(connection)
                .update(name=None)
            )


hooks.register_member_data(OrderData())
hooks.IDENTITY_LINKED_HOOKS.append(on_identity_linked)
