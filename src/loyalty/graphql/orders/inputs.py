"""Inputs of the orders domain. Money in integer minor units (`Long`)."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry import relay

from loyalty.graphql.members.types import Channel, IdentityKind
from loyalty.graphql.scalars import Long


@strawberry.input(description="An order line as the channel sells it.")
class OrderLineInput:
    sku: str = strawberry.field(description="The channel's SKU, 1–64 characters.")
    quantity: int = strawberry.field(description="Whole units, 1–1000000.")
    unit_price: Long = strawberry.field(description="Price per unit in minor units, ≥ 0.")
    name: str | None = strawberry.field(default=None, description="Product name.")
    category: str | None = strawberry.field(
        default=None, description="Product category (category bonuses, favourites)."
    )


@strawberry.input(description="How the channel knows the buyer (phone, POS card, openid…).")
class OrderIdentityInput:
    kind: IdentityKind = strawberry.field(description="Kind of identity.")
    value: str = strawberry.field(description="The value (phones in any common format).")
    scope: str | None = strawberry.field(
        default=None, description="Mini-program app id, for WECHAT_OPENID."
    )


@strawberry.input(description="An order to record. Give `memberId` or `identity`, not both.")
class RecordOrderInput:
    channel: Channel = strawberry.field(description="The recording channel.")
    external_id: str = strawberry.field(
        description="The channel's order id; recording it again is idempotent."
    )
    occurred_at: datetime = strawberry.field(description="When the purchase happened.")
    currency: str = strawberry.field(description="ISO 4217 code, e.g. `CNY`.")
    lines: list[OrderLineInput] = strawberry.field(description="1–500 lines.")
    member_id: relay.GlobalID | None = strawberry.field(default=None, description="The member.")
    identity: OrderIdentityInput | None = strawberry.field(
        default=None,
        description="The buyer's identity; unknown identities make a guest order that "
        "attaches when the identity is linked to a member.",
    )
    store_id: str | None = strawberry.field(
        default=None, description="Store; defaults to the API key's store."
    )
    discount_total: Long = strawberry.field(default=0, description="Order discounts, minor units.")
    points_payment: Long = strawberry.field(
        default=0,
        description="Part of the price paid with points (minor units); earns no points.",
    )


@strawberry.input(description="Units of one line to refund.")
class RefundLineInput:
    line_no: int = strawberry.field(description="The line's `lineNo`.")
    quantity: int = strawberry.field(description="Units to refund, ≥ 1.")


@strawberry.input(description="A refund: some lines, or the whole rest of the order.")
class RefundOrderInput:
    channel: Channel = strawberry.field(description="Channel of the order.")
    order_external_id: str = strawberry.field(description="The channel's order id.")
    refund_id: str = strawberry.field(
        description="The channel's refund id; refunding again with it is idempotent."
    )
    lines: list[RefundLineInput] | None = strawberry.field(
        default=None, description="Lines and quantities to refund."
    )
    whole: bool = strawberry.field(
        default=False, description="Refund everything not refunded yet (instead of lines)."
    )
