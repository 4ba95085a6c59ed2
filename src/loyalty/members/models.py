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


class IdentityKind(StrEnum):
    """How a channel knows a person. Only WECHAT_OPENID is scoped (by mini-program app id)."""

    WECHAT_OPENID = "WECHAT_OPENID"
    WECHAT_UNIONID = "WECHAT_UNIONID"
    POS_CARD = "POS_CARD"
    APP_USER = "APP_USER"
    ONLINE_ACCOUNT = "ONLINE_ACCOUNT"
    PHONE = "PHONE"
    EMAIL = "EMAIL"


#: Kinds whose values are only unique within a scope (the mini-program app id).
SCOPED_KINDS: frozenset[IdentityKind] = frozenset({IdentityKind.WECHAT_OPENID})


class ConsentPurpose(StrEnum):
    MARKETING_SMS = "MARKETING_SMS"
    MARKETING_EMAIL = "MARKETING_EMAIL"
    MARKETING_PUSH = "MARKETING_PUSH"
    MARKETING_WECHAT = "MARKETING_WECHAT"
    PROFILING = "PROFILING"


class LifecycleStage(StrEnum):
    NEW = "NEW"
    ACTIVE = "ACTIVE"
    AT_RISK = "AT_RISK"
    LAPSED = "LAPSED"


class Member(Model):
    """A loyalty member. Money is in minor units (fen), times are UTC."""

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


class ChannelIdentity(Model):
    """One way a channel knows a member. ``(kind, scope, value)`` is unique.

    ``scope`` is the mini-program app id for WECHAT_OPENID and ``""`` for every other kind
    (never NULL, so the unique key holds on PostgreSQL and SQLite alike). PHONE values are
    E.164 and EMAIL values lower-cased. A member's ``phone``/``email`` also have a row here.
    """

    id = fields.BigIntField(primary_key=True)
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "loyalty.Member", related_name="identities", on_delete=fields.RESTRICT
    )
    kind = fields.CharEnumField(IdentityKind, max_length=24)
    scope = fields.CharField(max_length=64, default="")
    value = fields.CharField(max_length=128)
    channel = fields.CharEnumField(Channel, max_length=24, description="Channel that linked it")
    linked_at = fields.DatetimeField()

    class Meta:
        table = "channel_identity"
        unique_together = (("kind", "scope", "value"),)
        indexes = (Index(fields=("member_id", "id"), name="channel_identity_member_idx"),)


class Consent(Model):
    """One consent decision (append-only): the member's current state per purpose is the
    row with the highest id for that purpose."""

    id = fields.BigIntField(primary_key=True)
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "loyalty.Member", related_name="consents", on_delete=fields.RESTRICT
    )
    purpose = fields.CharEnumField(ConsentPurpose, max_length=24)
    granted = fields.BooleanField()
    channel = fields.CharEnumField(Channel, max_length=24, description="Where it was given")
    policy_version = fields.CharField(max_length=32)
    recorded_at = fields.DatetimeField()

    class Meta:
        table = "consent"
        indexes = (Index(fields=("member_id", "purpose", "id"), name="consent_member_idx"),)


class MemberTag(Model):
    """A member's tag as its own row, so tag filters are portable (``Member.tags`` mirrors it)."""

    id = fields.BigIntField(primary_key=True)
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "loyalty.Member", related_name="tag_rows", on_delete=fields.RESTRICT
    )
    tag = fields.CharField(max_length=32)

    class Meta:
        table = "member_tag"
        unique_together = (("member_id", "tag"),)
        indexes = (Index(fields=("tag", "member_id"), name="member_tag_tag_idx"),)


class MemberMerge(Model):
    """A completed merge, keyed by the caller's idempotency key (ids only, no personal data)."""

    id = fields.BigIntField(primary_key=True)
    idempotency_key = fields.CharField(max_length=128, unique=True)
    survivor_id = fields.BigIntField()
    merged_id = fields.BigIntField(unique=True)
    actor = fields.CharField(max_length=128)
    merged_at = fields.DatetimeField()

    class Meta:
        table = "member_merge"


class DuplicateHint(Model):
    """Evidence that two members are one person, where no identity row can hold it.

    E.g. a member proved through WeChat a phone number another member owns. Listed by
    ``duplicateCandidates`` while both members are active. Ids only, no personal values.
    """

    id = fields.BigIntField(primary_key=True)
    member_a_id = fields.BigIntField(description="The lower member id")
    member_b_id = fields.BigIntField(description="The higher member id")
    reason = fields.CharField(max_length=32)
    created_at = fields.DatetimeField()

    class Meta:
        table = "member_duplicate_hint"
        unique_together = (("member_a_id", "member_b_id", "reason"),)
