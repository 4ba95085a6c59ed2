"""Member: the person behind every channel identity."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model


class Channel(StrEnum):
    """Where a member or an order came from."""

    ONLINE_STORE = "ONLINE_STORE"
    POS = "POS"
    APP = "APP"
    WECHAT_MINIPROGRAM = "WECHAT_MINIPROGRAM"
    CONSOLE = "CONSOLE"
    IMPORT = "IMPORT"


class MemberStatus(StrEnum):
    ACTIVE = "ACTIVE"
    DEACTIVATED = "DEACTIVATED"
    MERGED = "MERGED"
    ERASED = "ERASED"


class Gender(StrEnum):
    FEMALE = "FEMALE"
    MALE = "MALE"
    OTHER = "OTHER"
    UNDISCLOSED = "UNDISCLOSED"


class LifecycleStage(StrEnum):
    NEW = "NEW"
    ACTIVE = "ACTIVE"
    AT_RISK = "AT_RISK"
    LAPSED = "LAPSED"


class Member(Model):
    """A loyalty member. Money is in minor units (fen); times are UTC."""

    id = fields.BigIntField(primary_key=True)
    display_name = fields.CharField(max_length=64)
    phone = fields.CharField(max_length=20, null=True, unique=True)  # E.164
    email = fields.CharField(max_length=254, null=True, unique=True)  # lower-cased
    birth_date = fields.DateField(null=True)
    birth_month = fields.SmallIntField(null=True)
    birth_day = fields.SmallIntField(null=True)
    gender = fields.CharEnumField(Gender, max_length=16, default=Gender.UNDISCLOSED)
    timezone = fields.CharField(max_length=64, null=True)
    region = fields.CharField(max_length=64, null=True)
    registered_channel = fields.CharEnumField(Channel, max_length=24)
    registered_at = fields.DatetimeField()
    status = fields.CharEnumField(MemberStatus, max_length=16, default=MemberStatus.ACTIVE)
    merged_into: fields.ForeignKeyNullableRelation[Member] = fields.ForeignKeyField(
        "loyalty.Member", null=True, related_name=False, on_delete=fields.RESTRICT
    )
    lifecycle_stage = fields.CharEnumField(
        LifecycleStage, max_length=16, default=LifecycleStage.NEW
    )
    tags = fields.JSONField(default=list)
    # Running stats, kept up to date in the same transaction as each order.
    total_spend = fields.BigIntField(default=0)
    order_count = fields.IntField(default=0)
    first_order_at = fields.DatetimeField(null=True)
    last_order_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "member"
        indexes = (
            Index(fields=("birth_month", "birth_day"), name="member_birthday_idx"),
            Index(fields=("registered_channel", "id"), name="member_channel_idx"),
        )

    def __str__(self) -> str:
        return f"Member({self.id})"
