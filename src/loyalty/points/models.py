"""The points ledger: accounts, entries (EARN entries are lots), allocations, rules.

Invariants (checked by ``loyalty check-ledger``):

- ``PointsAccount.balance`` = Σ ``PointsEntry.amount`` = Σ ``remaining`` of the member's lots;
- ``PointsAccount.debt`` = Σ ``PointsEntry.debt_delta``; ``pending`` = Σ pending earnings;
- a lot's ``remaining`` = its ``amount`` − Σ allocations on it; an entry that draws on lots
  (or returns points to them) has allocations adding up to −``amount``;
- balance, pending, debt and every lot's ``remaining`` are never negative: each change is one
  conditional UPDATE with a row-count check, and the columns carry a CHECK constraint.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model

from loyalty.members.models import Member


class NonNegativeBigIntField(fields.BigIntField):
    """BIGINT with a column-level ``CHECK (column >= 0)``.

    Tortoise 1.1.9 applies ``Meta.constraints`` (``CheckConstraint``) only through its
    migration editor, not through ``generate_schemas``; a column constraint in the column type
    is emitted by both, on PostgreSQL and SQLite alike.
    """

    @property
    def SQL_TYPE(self) -> str:  # type: ignore[override]
        column = self.source_field or self.model_field_name
        return f'BIGINT CHECK ("{column}" >= 0)'


class EntryKind(StrEnum):
    """What a ledger entry did to the balance."""

    EARN = "EARN"  # + lot: points earned on an order or granted (campaign, activity)
    REDEEM = "REDEEM"  # − points spent
    EXPIRE = "EXPIRE"  # − a lot's remaining points reached their expiry
    ADJUST = "ADJUST"  # ± by an admin, with a reason (a positive adjustment is a lot)
    REVERSE = "REVERSE"  # − points earned on refunded lines, clawed back
    DEBT = "DEBT"  # 0 on the balance, + debt: the part of a reversal the balance could not cover
    SETTLE = "SETTLE"  # − balance and − debt: later earnings paying the debt first
    RESTORE = "RESTORE"  # + points that paid for refunded lines, back to their original lots


#: Kinds whose entries are lots (carry ``remaining`` and ``expires_at``).
LOT_KINDS = frozenset({EntryKind.EARN, EntryKind.ADJUST})


class SourceType(StrEnum):
    """Where an entry came from."""

    ORDER = "ORDER"
    REFUND = "REFUND"
    REDEMPTION = "REDEMPTION"
    CAMPAIGN = "CAMPAIGN"
    ACTIVITY = "ACTIVITY"
    ADMIN = "ADMIN"
    SYSTEM = "SYSTEM"


class PointsAccount(Model):
    """Per-member cache of the ledger: changed only by conditional single-statement UPDATEs."""

    id = fields.BigIntField(primary_key=True)
    member: fields.OneToOneRelation[Member] = fields.OneToOneField(
        "loyalty.Member", related_name=False, on_delete=fields.RESTRICT
    )
    balance = NonNegativeBigIntField(default=0, description="Spendable points")
    pending = NonNegativeBigIntField(default=0, description="Earned, not yet active")
    debt = NonNegativeBigIntField(default=0, description="Clawback not covered by the balance")

    class Meta:
        table = "points_account"


class PointsEntry(Model):
    """One append-only ledger line. ``amount`` is the signed change of the balance."""

    id = fields.BigIntField(primary_key=True)
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "loyalty.Member", related_name=False, on_delete=fields.RESTRICT
    )
    kind = fields.CharEnumField(EntryKind, max_length=16)
    amount = fields.BigIntField(description="Signed change of the balance")
    debt_delta = fields.BigIntField(default=0, description="Signed change of the debt")
    idempotency_key = fields.CharField(max_length=191, unique=True)
    request_hash = fields.CharField(max_length=64, null=True)
    source_type = fields.CharEnumField(SourceType, max_length=16)
    source_ref = fields.CharField(max_length=191, null=True, description="Order / refund / key")
    order_id = fields.BigIntField(null=True, description="Order this entry belongs to")
    order_channel = fields.CharField(max_length=24, null=True)
    order_external_id = fields.CharField(max_length=128, null=True)
    reverses_entry_id = fields.BigIntField(null=True, description="Redemption a RESTORE undoes")
    reason = fields.CharField(max_length=500, null=True, description="Free text (admin reason)")
    actor = fields.CharField(max_length=128, null=True)
    # Lot columns: set on EARN and positive ADJUST entries only.
    remaining = NonNegativeBigIntField(null=True)
    expires_at = fields.DatetimeField(null=True)
    balance_after = fields.BigIntField(null=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "points_entry"
        indexes = (
            Index(fields=("member_id", "id"), name="points_entry_member_idx"),
            Index(fields=("member_id", "remaining", "expires_at"), name="points_lot_open_idx"),
            Index(fields=("expires_at", "remaining"), name="points_lot_expiry_idx"),
            Index(fields=("order_id", "kind"), name="points_entry_order_idx"),
            Index(fields=("order_channel", "order_external_id"), name="points_entry_order_ref_idx"),
        )


class PointsAllocation(Model):
    """How much an entry took from (positive) or returned to (negative) one lot."""

    id = fields.BigIntField(primary_key=True)
    member_id = fields.BigIntField()
    entry: fields.ForeignKeyRelation[PointsEntry] = fields.ForeignKeyField(
        "loyalty.PointsEntry", related_name="allocations", on_delete=fields.RESTRICT
    )
    lot: fields.ForeignKeyRelation[PointsEntry] = fields.ForeignKeyField(
        "loyalty.PointsEntry", related_name="drawn_by", on_delete=fields.RESTRICT
    )
    amount = fields.BigIntField()

    class Meta:
        table = "points_allocation"
        indexes = (Index(fields=("member_id", "entry_id"), name="points_allocation_member_idx"),)


class PendingStatus(StrEnum):
    PENDING = "PENDING"
    ACTIVATED = "ACTIVATED"
    CANCELLED = "CANCELLED"


class PendingEarning(Model):
    """Points earned on an order that become active after the return window."""

    id = fields.BigIntField(primary_key=True)
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "loyalty.Member", related_name=False, on_delete=fields.RESTRICT
    )
    order_id = fields.BigIntField(unique=True)
    amount = NonNegativeBigIntField(description="Still pending (refunds reduce it)")
    original_amount = fields.BigIntField()
    status = fields.CharEnumField(PendingStatus, max_length=16, default=PendingStatus.PENDING)
    activates_at = fields.DatetimeField()
    created_at = fields.DatetimeField()
    activated_at = fields.DatetimeField(null=True)

    class Meta:
        table = "points_pending"
        indexes = (Index(fields=("status", "activates_at"), name="points_pending_due_idx"),)


class RuleKind(StrEnum):
    BASE = "BASE"  # points per currency unit paid
    CATEGORY_BONUS = "CATEGORY_BONUS"  # × per-mille on lines of some categories
    PROMOTION = "PROMOTION"  # × per-mille on the whole order inside a window


class EarningRule(Model):
    """One earning rule, editable by admins. Multipliers are per-mille (2000 = ×2)."""

    id = fields.BigIntField(primary_key=True)
    code = fields.CharField(max_length=64, unique=True)
    name = fields.CharField(max_length=128)
    kind = fields.CharEnumField(RuleKind, max_length=16)
    active = fields.BooleanField(default=True)
    currency = fields.CharField(max_length=3, default="CNY")
    points_per_unit = fields.BigIntField(default=0, description="BASE: points per currency unit")
    multiplier_permille = fields.IntField(default=1000)
    categories: Any = fields.JSONField(default=list)
    channels: Any = fields.JSONField(default=list, description="Empty: every channel")
    starts_at = fields.DatetimeField(null=True)
    ends_at = fields.DatetimeField(null=True)
    days_of_month: Any = fields.JSONField(default=list, description="Business-zone days")
    weekdays: Any = fields.JSONField(default=list, description="1 = Monday … 7 = Sunday")
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    class Meta:
        table = "earning_rule"


class PointsProgram(Model):
    """Program-wide tunables (a single row, id 1), editable by admins."""

    id = fields.IntField(primary_key=True)
    expiry_months = fields.IntField(null=True, default=12, description="Null: never expire")
    pending_days = fields.IntField(default=0)
    guest_attach_window_days = fields.IntField(default=30)
    per_order_cap = fields.BigIntField(null=True)
    per_day_cap = fields.BigIntField(null=True)
    updated_at = fields.DatetimeField()

    class Meta:
        table = "points_program"
