"""Benefit catalog, tier entitlements, per-period usage counters and claims."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model

if TYPE_CHECKING:
    from loyalty.members.models import Member
    from loyalty.tiers.models import Tier


class BenefitKind(StrEnum):
    PERCENT_DISCOUNT = "PERCENT_DISCOUNT"
    AMOUNT_OFF = "AMOUNT_OFF"
    FREE_SHIPPING = "FREE_SHIPPING"
    BIRTHDAY_GIFT = "BIRTHDAY_GIFT"
    PRIORITY_SERVICE = "PRIORITY_SERVICE"
    EVENT_ACCESS = "EVENT_ACCESS"
    POINTS_MULTIPLIER = "POINTS_MULTIPLIER"
    CUSTOM = "CUSTOM"


class QuotaPeriod(StrEnum):
    """How often an entitlement's quota renews (business time zone)."""

    DAY = "DAY"
    WEEK = "WEEK"  # ISO week, Monday first
    MONTH = "MONTH"
    YEAR = "YEAR"
    LIFETIME = "LIFETIME"
    UNLIMITED = "UNLIMITED"


class ClaimStatus(StrEnum):
    CLAIMED = "CLAIMED"  # used at once
    RESERVED = "RESERVED"  # held for a checkout until `hold_until`
    CONFIRMED = "CONFIRMED"  # a reservation bound to an order
    RELEASED = "RELEASED"  # a reservation given back (by the caller or the timeout job)


class Benefit(Model):
    """A catalog entry. ``config`` is validated per kind, empty ``channels`` means everywhere."""

    id = fields.IntField(primary_key=True)
    code = fields.CharField(max_length=32, unique=True)
    name = fields.CharField(max_length=64)
    kind = fields.CharEnumField(BenefitKind, max_length=24)
    config: Any = fields.JSONField(default=dict)
    channels: Any = fields.JSONField(default=list)
    description = fields.TextField(default="")
    active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "benefit"
        ordering = ("code",)


class TierEntitlement(Model):
    """Benefit x tier with a quota per period. Higher tiers inherit it unless they override it,
    ``excluded`` is an override that removes an inherited benefit."""

    id = fields.IntField(primary_key=True)
    tier: fields.ForeignKeyRelation[Tier] = fields.ForeignKeyField(
        "loyalty.Tier", related_name=False, on_delete=fields.CASCADE
    )
    benefit: fields.ForeignKeyRelation[Benefit] = fields.ForeignKeyField(
        "loyalty.Benefit", related_name=False, on_delete=fields.CASCADE
    )
    period = fields.CharEnumField(QuotaPeriod, max_length=16)
    quota = fields.IntField(null=True, description="Uses per period (null when UNLIMITED)")
    excluded = fields.BooleanField(default=False)

    class Meta:
        table = "tier_entitlement"
        unique_together = (("tier", "benefit"),)


class BenefitCounter(Model):
    """Uses of one benefit by one member in one period (``period_key``: D2026-03-01,
    W2026-09, M2026-03, Y2026, L). Only ever changed by conditional single statements."""

    id = fields.BigIntField(primary_key=True)
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "loyalty.Member", related_name=False, on_delete=fields.CASCADE
    )
    benefit: fields.ForeignKeyRelation[Benefit] = fields.ForeignKeyField(
        "loyalty.Benefit", related_name=False, on_delete=fields.CASCADE
    )
    period_key = fields.CharField(max_length=16)
    used = fields.IntField(default=0)

    class Meta:
        table = "benefit_counter"
        unique_together = (("member", "benefit", "period_key"),)


class BenefitClaim(Model):
    """One use (or held use) of a benefit. ``(key_member_id, idempotency_key)`` is unique."""

    id = fields.BigIntField(primary_key=True)
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "loyalty.Member", related_name=False, on_delete=fields.CASCADE
    )
    benefit: fields.ForeignKeyRelation[Benefit] = fields.ForeignKeyField(
        "loyalty.Benefit", related_name=False, on_delete=fields.RESTRICT
    )
    channel = fields.CharField(max_length=24)
    idempotency_key = fields.CharField(max_length=64)
    key_member_id = fields.BigIntField(
        description="The member the claim was asked for, before merges: the key's scope"
    )
    status = fields.CharEnumField(ClaimStatus, max_length=16)
    tier_code = fields.CharField(max_length=32)
    period_key = fields.CharField(max_length=16, null=True, description="Null: unlimited")
    order_ref = fields.CharField(max_length=64, null=True)
    hold_until = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField()
    confirmed_at = fields.DatetimeField(null=True)
    released_at = fields.DatetimeField(null=True)

    class Meta:
        table = "benefit_claim"
        unique_together = (("key_member_id", "idempotency_key"),)
        indexes = (
            Index(fields=("status", "hold_until"), name="benefit_claim_hold_idx"),
            Index(fields=("member_id", "created_at"), name="benefit_claim_member_idx"),
        )
