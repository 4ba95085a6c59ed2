"""Inputs of the points domain."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry import relay

from loyalty.graphql.members.types import Channel
from loyalty.graphql.orders.inputs import OrderLineInput
from loyalty.graphql.points.types import RuleKind
from loyalty.graphql.scalars import Long


@strawberry.input(description="Spend points. Member tokens spend their own points only.")
class RedeemPointsInput:
    amount: Long = strawberry.field(description="Points to spend, ≥ 1.")
    idempotency_key: str = strawberry.field(
        description="Unique per member and spend (1–128 chars); a retry with it is answered "
        "with the first result."
    )
    member_id: relay.GlobalID | None = strawberry.field(
        default=None, description="The member; defaults to the calling member."
    )
    order_channel: Channel | None = strawberry.field(
        default=None, description="Channel of the order the points pay for."
    )
    order_external_id: str | None = strawberry.field(
        default=None,
        description="That order's id: a refund of it returns the points to their lots.",
    )


@strawberry.input(description="An admin correction of a member's points.")
class AdjustPointsInput:
    member_id: relay.GlobalID = strawberry.field(description="The member.")
    amount: Long = strawberry.field(
        description="Signed points: positive adds a lot (default expiry), negative takes "
        "points oldest expiry first and never below zero."
    )
    reason: str = strawberry.field(description="Why (required, ≤ 500 characters).")
    idempotency_key: str = strawberry.field(description="Unique per member and adjustment.")


@strawberry.input(description="An earning rule; without `id` a new one is created.")
class EarningRuleInput:
    code: str = strawberry.field(description="Unique code, 1–64 characters.")
    name: str = strawberry.field(description="Name shown to staff.")
    kind: RuleKind = strawberry.field(description="BASE, CATEGORY_BONUS or PROMOTION.")
    id: strawberry.ID | None = strawberry.field(default=None, description="Rule to change.")
    active: bool = strawberry.field(default=True, description="Inactive rules never apply.")
    currency: str = strawberry.field(default="CNY", description="BASE: currency of the rate.")
    points_per_unit: Long = strawberry.field(
        default=0, description="BASE: points per whole currency unit paid (rounded down)."
    )
    multiplier_permille: int = strawberry.field(
        default=1000, description="Multiplier in per-mille (2000 = ×2)."
    )
    categories: list[str] = strawberry.field(
        default_factory=list, description="CATEGORY_BONUS: categories."
    )
    channels: list[Channel] = strawberry.field(
        default_factory=list, description="Channels; empty: all."
    )
    starts_at: datetime | None = strawberry.field(default=None, description="Window start.")
    ends_at: datetime | None = strawberry.field(default=None, description="Window end.")
    days_of_month: list[int] = strawberry.field(
        default_factory=list, description="Only these days of the month (e.g. member day)."
    )
    weekdays: list[int] = strawberry.field(
        default_factory=list, description="Only these weekdays (1 = Monday … 7 = Sunday)."
    )


@strawberry.input(description="Program-wide points tunables (all replaced).")
class PointsProgramInput:
    expiry_months: int | None = strawberry.field(description="1–120; null: never expire.")
    pending_days: int = strawberry.field(description="Return window in days, 0–365.")
    guest_attach_window_days: int = strawberry.field(
        default=30, description="Guest orders this recent earn when attached."
    )
    per_order_cap: Long | None = strawberry.field(default=None, description="Per-order cap.")
    per_day_cap: Long | None = strawberry.field(default=None, description="Per-day cap.")


@strawberry.input(description="An order to simulate; nothing is written.")
class SimulateEarnInput:
    channel: Channel = strawberry.field(description="The channel.")
    currency: str = strawberry.field(description="ISO 4217 code.")
    lines: list[OrderLineInput] = strawberry.field(description="The lines.")
    occurred_at: datetime | None = strawberry.field(default=None, description="Default: now.")
    member_id: relay.GlobalID | None = strawberry.field(
        default=None, description="Whose tier multiplier and daily cap apply."
    )
    discount_total: Long = strawberry.field(default=0, description="Discounts, minor units.")
    points_payment: Long = strawberry.field(default=0, description="Paid with points.")
