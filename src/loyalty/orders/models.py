"""Orders from channel systems, their lines and refunds. Money in integer minor units."""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model

from loyalty.members.models import Member


class Order(Model):
    """One order, unique on ``(channel, external_id)``.

    ``request_hash`` is the SHA-256 of the canonical input: the same id with other content is a
    conflict. A guest order (no member yet) keeps the identity it was placed with and attaches
    when that identity is linked to a member. The ``points_*``/``balance_after``/``tier_change``
    columns keep the first result so a replay answers the same.
    """

    id = fields.BigIntField(primary_key=True)
    channel = fields.CharField(max_length=24)
    external_id = fields.CharField(max_length=128)
    request_hash = fields.CharField(max_length=64)
    member: fields.ForeignKeyNullableRelation[Member] = fields.ForeignKeyField(
        "loyalty.Member", null=True, related_name=False, on_delete=fields.RESTRICT
    )
    guest_identity_kind = fields.CharField(max_length=24, null=True)
    guest_identity_scope = fields.CharField(max_length=64, null=True)
    guest_identity_value = fields.CharField(max_length=128, null=True)
    store_id = fields.CharField(max_length=64, null=True)
    occurred_at = fields.DatetimeField()
    recorded_at = fields.DatetimeField()
    attached_at = fields.DatetimeField(null=True, description="When a guest order got its member")
    currency = fields.CharField(max_length=3)
    subtotal = fields.BigIntField(description="Σ quantity × unit price")
    discount_total = fields.BigIntField(default=0)
    points_payment = fields.BigIntField(default=0, description="Part paid with points (money)")
    paid_amount = fields.BigIntField(description="subtotal − discounts − points payment")
    refunded_amount = fields.BigIntField(default=0, description="Paid amount refunded so far")
    points_earned = fields.BigIntField(default=0, description="Active points earned")
    points_pending = fields.BigIntField(default=0, description="Points waiting for activation")
    balance_after = fields.BigIntField(null=True)
    tier_change: Any = fields.JSONField(null=True)
    rules_applied: Any = fields.JSONField(default=list)

    class Meta:
        table = "customer_order"
        unique_together = (("channel", "external_id"),)
        indexes = (
            Index(fields=("member_id", "occurred_at", "id"), name="customer_order_member_idx"),
            Index(
                fields=("guest_identity_kind", "guest_identity_scope", "guest_identity_value"),
                name="customer_order_guest_idx",
            ),
        )


class OrderLine(Model):
    """One order line. ``paid`` is its share of the paid amount, ``points`` its share of the
    order's points (both allocated so that they add up to the order's totals exactly)."""

    id = fields.BigIntField(primary_key=True)
    order: fields.ForeignKeyRelation[Order] = fields.ForeignKeyField(
        "loyalty.Order", related_name="lines", on_delete=fields.CASCADE
    )
    line_no = fields.IntField()
    sku = fields.CharField(max_length=64)
    name = fields.CharField(max_length=200, null=True)
    category = fields.CharField(max_length=64, null=True)
    quantity = fields.IntField()
    unit_price = fields.BigIntField()
    gross = fields.BigIntField()
    discount = fields.BigIntField(default=0)
    points_payment = fields.BigIntField(default=0)
    paid = fields.BigIntField()
    points = fields.BigIntField(default=0)
    refunded_quantity = fields.IntField(default=0)
    refunded_paid = fields.BigIntField(default=0)
    points_reversed = fields.BigIntField(default=0)
    points_returned = fields.BigIntField(default=0, description="Redeemed points given back")

    class Meta:
        table = "customer_order_line"
        unique_together = (("order_id", "line_no"),)


class Refund(Model):
    """A refund of some lines (or all) of an order, unique on ``(order, external_id)``."""

    id = fields.BigIntField(primary_key=True)
    order: fields.ForeignKeyRelation[Order] = fields.ForeignKeyField(
        "loyalty.Order", related_name="refunds", on_delete=fields.RESTRICT
    )
    member_id = fields.BigIntField(null=True)
    external_id = fields.CharField(max_length=128)
    request_hash = fields.CharField(max_length=64)
    whole = fields.BooleanField(default=False)
    amount = fields.BigIntField(description="Paid amount refunded (minor units)")
    points_reversed = fields.BigIntField(default=0, description="Earned points clawed back")
    debt_created = fields.BigIntField(default=0)
    pending_cancelled = fields.BigIntField(default=0)
    points_returned = fields.BigIntField(default=0, description="Redeemed points given back")
    points_forfeited = fields.BigIntField(default=0, description="…to lots already expired")
    balance_after = fields.BigIntField(null=True)
    lines: Any = fields.JSONField(default=list, description="[{line_no, quantity, paid}]")
    created_at = fields.DatetimeField()

    class Meta:
        table = "order_refund"
        unique_together = (("order_id", "external_id"),)
        indexes = (Index(fields=("member_id", "id"), name="order_refund_member_idx"),)


class MemberCategoryStat(Model):
    """Per member and category: spend and quantity, kept at order time (favourites)."""

    id = fields.BigIntField(primary_key=True)
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "loyalty.Member", related_name=False, on_delete=fields.RESTRICT
    )
    category = fields.CharField(max_length=64)
    spend = fields.BigIntField(default=0)
    quantity = fields.BigIntField(default=0)
    order_count = fields.IntField(default=0)

    class Meta:
        table = "member_category_stat"
        unique_together = (("member_id", "category"),)
