"""GraphQL types of the orders domain. Money is in integer minor units (fen)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry import relay
from strawberry.dataloader import DataLoader

from loyalty.graphql.context import Info
from loyalty.graphql.permissions import ensure_member_access
from loyalty.graphql.scalars import Long
from loyalty.orders import models
from loyalty.orders import service as orders

if TYPE_CHECKING:
    from loyalty.graphql.members.types import Member


async def _lines(ids: list[int]) -> list[list[models.OrderLine]]:
    found = await orders.lines_for(ids)
    return [found.get(i, []) for i in ids]


async def _orders(ids: list[int]) -> list[models.Order | None]:
    found = {o.id: o for o in await orders.by_ids(ids)}
    return [found.get(i) for i in ids]


@strawberry.type(description="One order line.")
class OrderLine:
    line_no: int = strawberry.field(description="1-based position; refunds name lines by it.")
    sku: str = strawberry.field(description="The channel's SKU.")
    name: str | None = strawberry.field(description="Product name.")
    category: str | None = strawberry.field(description="Product category.")
    quantity: int = strawberry.field(description="Units bought.")
    unit_price: Long = strawberry.field(description="Price per unit, minor units.")
    paid: Long = strawberry.field(
        description="This line's share of the paid amount (after discounts and points payment)."
    )
    points: Long = strawberry.field(description="This line's share of the points earned.")
    refunded_quantity: int = strawberry.field(description="Units refunded so far.")

    @classmethod
    def from_model(cls, row: models.OrderLine) -> OrderLine:
        return cls(
            line_no=row.line_no,
            sku=row.sku,
            name=row.name,
            category=row.category,
            quantity=row.quantity,
            unit_price=row.unit_price,
            paid=row.paid,
            points=row.points,
            refunded_quantity=row.refunded_quantity,
        )


@strawberry.type(description="A tier change caused by an order, as the tiers domain reported it.")
class OrderTierChange:
    from_tier: str | None = strawberry.field(description="Tier code before.")
    to_tier: str | None = strawberry.field(description="Tier code after.")
    details: strawberry.scalars.JSON = strawberry.field(description="Everything reported.")

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> OrderTierChange | None:
        """``raw`` is the ``tier_change`` an order hook reported (see ``loyalty.hooks``)."""
        if not raw:
            return None
        return cls(from_tier=raw.get("from"), to_tier=raw.get("to"), details=raw)


@strawberry.type(description="An order recorded by a channel system.")
class Order(relay.Node):
    id: relay.NodeID[int]
    channel: str = strawberry.field(description="Channel that recorded it.")
    external_id: str = strawberry.field(description="The channel's order id.")
    store_id: str | None = strawberry.field(description="Store, for POS orders.")
    occurred_at: datetime = strawberry.field(description="When the purchase happened (UTC).")
    currency: str = strawberry.field(description="ISO 4217 currency.")
    subtotal: Long = strawberry.field(description="Σ quantity × unit price, minor units.")
    discount_total: Long = strawberry.field(description="Discounts, minor units.")
    points_payment: Long = strawberry.field(description="Part paid with points, minor units.")
    paid_amount: Long = strawberry.field(description="Subtotal − discounts − points payment.")
    refunded_amount: Long = strawberry.field(description="Paid amount refunded so far.")
    points_earned: Long = strawberry.field(description="Points earned when it was recorded.")
    points_pending: Long = strawberry.field(description="Points that started pending.")
    guest: bool = strawberry.field(description="No member yet (attaches when linked).")
    member_id: strawberry.Private[int | None]

    @strawberry.field(description="The member, or null for a guest order or if not visible.")
    async def member(
        self, info: Info
    ) -> Annotated[Member, strawberry.lazy("loyalty.graphql.members.types")] | None:
        from loyalty.graphql.members.types import Member

        if self.member_id is None:
            return None
        if not ensure_member_access(info.context.principal, self.member_id):
            return None
        row = await info.context.loaders.member_by_id.load(self.member_id)
        return Member.from_model(row) if row is not None else None

    @strawberry.field(description="The order's lines.")
    async def lines(self, info: Info) -> list[OrderLine]:
        loader = info.context.loaders.get("order_lines_by_order", lambda: DataLoader(_lines))
        return [OrderLine.from_model(row) for row in await loader.load(self.id)]

    @classmethod
    def from_model(cls, row: models.Order) -> Order:
        return cls(
            id=row.id,
            channel=row.channel,
            external_id=row.external_id,
            store_id=row.store_id,
            occurred_at=row.occurred_at,
            currency=row.currency,
            subtotal=row.subtotal,
            discount_total=row.discount_total,
            points_payment=row.points_payment,
            paid_amount=row.paid_amount,
            refunded_amount=row.refunded_amount,
            points_earned=row.points_earned,
            points_pending=row.points_pending,
            guest=row.member_id is None,  # type: ignore[attr-defined]
            member_id=row.member_id,  # type: ignore[attr-defined]
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Order | None]:
        ids: list[int] = []
        for raw in node_ids:
            try:
                ids.append(int(raw))
            except ValueError:
                ids.append(-1)
        loader = info.context.loaders.get("order_by_id", lambda: DataLoader(_orders))
        rows = await loader.load_many(ids)
        principal = info.context.principal
        return [
            cls.from_model(row)
            if row is not None
            and (
                ensure_member_access(principal, row.member_id)  # type: ignore[attr-defined]
                if row.member_id is not None  # type: ignore[attr-defined]
                else principal.role.value in ("ADMIN", "STAFF", "SERVICE")
            )
            else None
            for row in rows
        ]


@strawberry.type(description="A refund of an order.")
class OrderRefund:
    refund_id: str = strawberry.field(description="The channel's refund id.")
    whole: bool = strawberry.field(description="Whether it refunded everything left.")
    amount: Long = strawberry.field(description="Paid amount refunded, minor units.")
    points_reversed: Long = strawberry.field(
        description="Points earned on the refunded lines that were taken back (clawed back "
        "plus recorded as debt)."
    )
    debt_created: Long = strawberry.field(description="The part the balance could not cover.")
    pending_cancelled: Long = strawberry.field(
        description="Pending points cancelled (inside the return window; balance untouched)."
    )
    points_returned: Long = strawberry.field(
        description="Redeemed points returned to their original lots (original expiry)."
    )
    points_forfeited: Long = strawberry.field(
        description="Redeemed points whose lots had expired: returned and expired at once."
    )
    balance: Long | None = strawberry.field(description="Balance right after the refund.")
    created_at: datetime = strawberry.field(description="When it was recorded (UTC).")

    @classmethod
    def from_model(cls, row: models.Refund) -> OrderRefund:
        return cls(
            refund_id=row.external_id,
            whole=row.whole,
            amount=row.amount,
            points_reversed=row.points_reversed,
            debt_created=row.debt_created,
            pending_cancelled=row.pending_cancelled,
            points_returned=row.points_returned,
            points_forfeited=row.points_forfeited,
            balance=row.balance_after,
            created_at=row.created_at,
        )
