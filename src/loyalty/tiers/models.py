"""Tier ladder, the member's current tier and its history.

Thresholds are in the metric's unit: minor units (fen) for SPEND, points for POINTS, orders
for ORDERS. Times are UTC.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model

if TYPE_CHECKING:
    from loyalty.members.models import Member


class Metric(StrEnum):
    """What qualifies a member for a tier."""

    SPEND = "SPEND"  # paid amount net of refunds, minor units
    POINTS = "POINTS"  # points earned
    ORDERS = "ORDERS"  # orders placed (fully refunded orders do not count)


class Window(StrEnum):
    """Over which period the metric is summed, ending at the time of evaluation."""

    ROLLING_DAYS = "ROLLING_DAYS"
    CALENDAR_YEAR = "CALENDAR_YEAR"  # from January 1 in the business time zone


class DowngradePolicy(StrEnum):
    """Where a member who no longer qualifies lands at review."""

    ONE_DOWN = "ONE_DOWN"
    RECALCULATE = "RECALCULATE"


class ChangeReason(StrEnum):
    ORDER = "ORDER"
    REVIEW = "REVIEW"
    ADMIN = "ADMIN"
    RULE_CHANGE = "RULE_CHANGE"
    MERGE = "MERGE"


class Tier(Model):
    """One rung of the ladder. The lowest rank is the entry tier (threshold 0)."""

    id = fields.IntField(primary_key=True)
    code = fields.CharField(max_length=32, unique=True)
    name = fields.CharField(max_length=64)
    rank = fields.SmallIntField(unique=True)
    metric = fields.CharEnumField(Metric, max_length=16, default=Metric.SPEND)
    threshold = fields.BigIntField(default=0)
    window = fields.CharEnumField(Window, max_length=16, default=Window.ROLLING_DAYS)
    window_days = fields.IntField(null=True)
    retention_days = fields.IntField(null=True, description="Null: the tier never expires")
    multiplier_permille = fields.IntField(default=1000, description="Points multiplier, 1000 = x1")
    description = fields.TextField(default="")
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "tier"
        ordering = ("rank",)


class TierPolicy(Model):
    """Program-wide tier settings (a single row, id 1)."""

    id = fields.IntField(primary_key=True)
    downgrade_policy = fields.CharEnumField(
        DowngradePolicy, max_length=16, default=DowngradePolicy.ONE_DOWN
    )
    notice_days = fields.IntField(default=30, description="Downgrade notice, days ahead")
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "tier_policy"


class MemberTier(Model):
    """A member's current tier. No row means the entry tier."""

    id = fields.BigIntField(primary_key=True)
    member: fields.OneToOneRelation[Member] = fields.OneToOneField(
        "loyalty.Member", related_name=False, on_delete=fields.CASCADE, db_constraint=True
    )
    tier: fields.ForeignKeyRelation[Tier] = fields.ForeignKeyField(
        "loyalty.Tier", related_name=False, on_delete=fields.RESTRICT
    )
    since = fields.DatetimeField()
    expires_at = fields.DatetimeField(null=True, description="Review date (null: never)")
    locked_until = fields.DatetimeField(null=True, description="Review leaves it alone until")
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "member_tier"
        indexes = (Index(fields=("expires_at",), name="member_tier_expires_idx"),)


class TierChange(Model):
    """History: one row per tier change, with reason and actor. Codes survive renames."""

    id = fields.BigIntField(primary_key=True)
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "loyalty.Member", related_name=False, on_delete=fields.CASCADE
    )
    from_code = fields.CharField(max_length=32, null=True)
    to_code = fields.CharField(max_length=32)
    reason = fields.CharEnumField(ChangeReason, max_length=16)
    actor = fields.CharField(max_length=128, description="Principal subject or `system`")
    order_id = fields.BigIntField(null=True)
    metric_value = fields.BigIntField(null=True)
    note = fields.CharField(max_length=255, null=True)
    at = fields.DatetimeField()

    class Meta:
        table = "tier_change"
        indexes = (Index(fields=("member_id", "at"), name="tier_change_member_idx"),)


class TierReview(Model):
    """One member's review for one business date: the key that makes a review idempotent.

    Written in the transaction that applies the review's outcome, so a review run again for
    the same date (a retried chunk, an operator re-running a day) finds it and changes nothing.
    """

    id = fields.BigIntField(primary_key=True)
    member_id = fields.BigIntField()
    business_date = fields.DateField(description="The business day the review stands for")
    outcome = fields.CharField(max_length=32, description="renewed, downgraded, upgraded, kept")
    run_id = fields.BigIntField(null=True, description="The job run that did it")
    at = fields.DatetimeField()

    class Meta:
        table = "tier_review"
        unique_together = (("member_id", "business_date"),)
