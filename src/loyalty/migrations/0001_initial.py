from uuid import uuid4

from orjson import loads
from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from loyalty.benefits.models import BenefitKind, ClaimStatus, QuotaPeriod
from loyalty.members.models import (
    Channel,
    ConsentPurpose,
    Gender,
    IdentityKind,
    LifecycleStage,
    MemberStatus,
)
from loyalty.points.models import (
    EntryKind,
    NonNegativeBigIntField,
    PendingStatus,
    RuleKind,
    SourceType,
)
from loyalty.tiers.models import ChangeReason, DowngradePolicy, Metric, Window


class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name="ApiKey",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "name",
                    fields.CharField(
                        description="What the key is for, e.g. `POS Shanghai`", max_length=64
                    ),
                ),
                (
                    "prefix",
                    fields.CharField(
                        description="First characters, to recognise a key", max_length=16
                    ),
                ),
                (
                    "key_hash",
                    fields.CharField(
                        unique=True, description="sha256 hex of the key", max_length=64
                    ),
                ),
                ("channel", fields.CharField(max_length=24)),
                ("store_id", fields.CharField(null=True, max_length=64)),
                ("scopes", fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                (
                    "created_by",
                    fields.CharField(description="Subject of the admin", max_length=128),
                ),
                (
                    "last_used_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("revoked_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "api_key",
                "app": "loyalty",
                "pk_attr": "id",
                "table_description": "A channel system's key (POS, online store): authenticates as SERVICE for ``channel``.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="AuditEntry",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("actor", fields.CharField(description="Principal subject", max_length=128)),
                ("actor_role", fields.CharField(max_length=16)),
                (
                    "action",
                    fields.CharField(description="e.g. member.merge, member.erase", max_length=64),
                ),
                ("target_type", fields.CharField(max_length=32)),
                ("target_id", fields.CharField(max_length=64)),
                (
                    "details",
                    fields.JSONField(
                        default=dict,
                        description="Ids and counts only, no PII",
                        encoder=JSON_DUMPS,
                        decoder=loads,
                    ),
                ),
                ("request_id", fields.CharField(null=True, max_length=128)),
            ],
            options={
                "table": "audit_entry",
                "app": "loyalty",
                "indexes": [
                    Index(fields=["target_type", "target_id"], name="audit_target_idx"),
                    Index(fields=["at"], name="audit_at_idx"),
                ],
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Benefit",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("code", fields.CharField(unique=True, max_length=32)),
                ("name", fields.CharField(max_length=64)),
                (
                    "kind",
                    fields.CharEnumField(
                        description="PERCENT_DISCOUNT: PERCENT_DISCOUNT\nAMOUNT_OFF: AMOUNT_OFF\nFREE_SHIPPING: FREE_SHIPPING\nBIRTHDAY_GIFT: BIRTHDAY_GIFT\nPRIORITY_SERVICE: PRIORITY_SERVICE\nEVENT_ACCESS: EVENT_ACCESS\nPOINTS_MULTIPLIER: POINTS_MULTIPLIER\nCUSTOM: CUSTOM",
                        enum_type=BenefitKind,
                        max_length=24,
                    ),
                ),
                ("config", fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=loads)),
                ("channels", fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ("description", fields.TextField(default="", unique=False)),
                ("active", fields.BooleanField(default=True)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={
                "table": "benefit",
                "app": "loyalty",
                "pk_attr": "id",
                "table_description": "A catalog entry. ``config`` is validated per kind, empty ``channels`` means everywhere.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="EarningRule",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("code", fields.CharField(unique=True, max_length=64)),
                ("name", fields.CharField(max_length=128)),
                (
                    "kind",
                    fields.CharEnumField(
                        description="BASE: BASE\nCATEGORY_BONUS: CATEGORY_BONUS\nPROMOTION: PROMOTION",
                        enum_type=RuleKind,
                        max_length=16,
                    ),
                ),
                ("active", fields.BooleanField(default=True)),
                ("currency", fields.CharField(default="CNY", max_length=3)),
                (
                    "points_per_unit",
                    fields.BigIntField(default=0, description="BASE: points per currency unit"),
                ),
                ("multiplier_permille", fields.IntField(default=1000)),
                ("categories", fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                (
                    "channels",
                    fields.JSONField(
                        default=list,
                        description="Empty: every channel",
                        encoder=JSON_DUMPS,
                        decoder=loads,
                    ),
                ),
                ("starts_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("ends_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                (
                    "days_of_month",
                    fields.JSONField(
                        default=list,
                        description="Business-zone days",
                        encoder=JSON_DUMPS,
                        decoder=loads,
                    ),
                ),
                (
                    "weekdays",
                    fields.JSONField(
                        default=list,
                        description="1 = Monday … 7 = Sunday",
                        encoder=JSON_DUMPS,
                        decoder=loads,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("updated_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "earning_rule",
                "app": "loyalty",
                "pk_attr": "id",
                "table_description": "One earning rule, editable by admins. Multipliers are per-mille (2000 = ×2).",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Event",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                ("kind", fields.CharField(max_length=64)),
                ("dedupe_key", fields.CharField(unique=True, max_length=191)),
                ("member_id", fields.BigIntField(null=True)),
                ("payload", fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=loads)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                (
                    "published_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("attempts", fields.IntField(default=0)),
            ],
            options={
                "table": "event",
                "app": "loyalty",
                "indexes": [
                    Index(fields=["published_at", "created_at"], name="event_unpublished_idx")
                ],
                "pk_attr": "id",
                "table_description": "A domain event with a stable id (used for outbound webhooks and streams).",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Member",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("display_name", fields.CharField(max_length=64)),
                ("phone", fields.CharField(null=True, unique=True, max_length=20)),
                ("email", fields.CharField(null=True, unique=True, max_length=254)),
                ("birth_date", fields.DateField(null=True)),
                ("birth_month", fields.SmallIntField(null=True)),
                ("birth_day", fields.SmallIntField(null=True)),
                (
                    "gender",
                    fields.CharEnumField(
                        default=Gender.UNDISCLOSED,
                        description="FEMALE: FEMALE\nMALE: MALE\nOTHER: OTHER\nUNDISCLOSED: UNDISCLOSED",
                        enum_type=Gender,
                        max_length=16,
                    ),
                ),
                ("timezone", fields.CharField(null=True, max_length=64)),
                ("region", fields.CharField(null=True, max_length=64)),
                (
                    "registered_channel",
                    fields.CharEnumField(
                        description="ONLINE_STORE: ONLINE_STORE\nPOS: POS\nAPP: APP\nWECHAT_MINIPROGRAM: WECHAT_MINIPROGRAM\nCONSOLE: CONSOLE\nIMPORT: IMPORT",
                        enum_type=Channel,
                        max_length=24,
                    ),
                ),
                ("registered_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                (
                    "status",
                    fields.CharEnumField(
                        default=MemberStatus.ACTIVE,
                        description="ACTIVE: ACTIVE\nDEACTIVATED: DEACTIVATED\nMERGED: MERGED\nERASED: ERASED",
                        enum_type=MemberStatus,
                        max_length=16,
                    ),
                ),
                (
                    "merged_into",
                    fields.ForeignKeyField(
                        "loyalty.Member",
                        source_field="merged_into_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "lifecycle_stage",
                    fields.CharEnumField(
                        default=LifecycleStage.NEW,
                        description="NEW: NEW\nACTIVE: ACTIVE\nAT_RISK: AT_RISK\nLAPSED: LAPSED",
                        enum_type=LifecycleStage,
                        max_length=16,
                    ),
                ),
                ("tags", fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ("total_spend", fields.BigIntField(default=0)),
                ("order_count", fields.IntField(default=0)),
                (
                    "first_order_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                (
                    "last_order_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={
                "table": "member",
                "app": "loyalty",
                "indexes": [
                    Index(fields=["birth_month", "birth_day"], name="member_birthday_idx"),
                    Index(fields=["registered_channel", "id"], name="member_channel_idx"),
                ],
                "pk_attr": "id",
                "table_description": "A loyalty member. Money is in minor units (fen), times are UTC.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="BenefitClaim",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "member",
                    fields.ForeignKeyField(
                        "loyalty.Member",
                        source_field="member_id",
                        db_constraint=True,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "benefit",
                    fields.ForeignKeyField(
                        "loyalty.Benefit",
                        source_field="benefit_id",
                        db_constraint=True,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("channel", fields.CharField(max_length=24)),
                ("idempotency_key", fields.CharField(max_length=64)),
                (
                    "status",
                    fields.CharEnumField(
                        description="CLAIMED: CLAIMED\nRESERVED: RESERVED\nCONFIRMED: CONFIRMED\nRELEASED: RELEASED",
                        enum_type=ClaimStatus,
                        max_length=16,
                    ),
                ),
                ("tier_code", fields.CharField(max_length=32)),
                (
                    "period_key",
                    fields.CharField(null=True, description="Null: unlimited", max_length=16),
                ),
                ("order_ref", fields.CharField(null=True, max_length=64)),
                ("hold_until", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                (
                    "confirmed_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                (
                    "released_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
            ],
            options={
                "table": "benefit_claim",
                "app": "loyalty",
                "unique_together": (("member", "idempotency_key"),),
                "indexes": [Index(fields=["status", "hold_until"], name="benefit_claim_hold_idx")],
                "pk_attr": "id",
                "table_description": "One use (or held use) of a benefit. ``(member, idempotency_key)`` is unique.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="BenefitCounter",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "member",
                    fields.ForeignKeyField(
                        "loyalty.Member",
                        source_field="member_id",
                        db_constraint=True,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "benefit",
                    fields.ForeignKeyField(
                        "loyalty.Benefit",
                        source_field="benefit_id",
                        db_constraint=True,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("period_key", fields.CharField(max_length=16)),
                ("used", fields.IntField(default=0)),
            ],
            options={
                "table": "benefit_counter",
                "app": "loyalty",
                "unique_together": (("member", "benefit", "period_key"),),
                "pk_attr": "id",
                "table_description": "Uses of one benefit by one member in one period (``period_key``: D2026-03-01,",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="ChannelIdentity",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "member",
                    fields.ForeignKeyField(
                        "loyalty.Member",
                        source_field="member_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="identities",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "kind",
                    fields.CharEnumField(
                        description="WECHAT_OPENID: WECHAT_OPENID\nWECHAT_UNIONID: WECHAT_UNIONID\nPOS_CARD: POS_CARD\nAPP_USER: APP_USER\nONLINE_ACCOUNT: ONLINE_ACCOUNT\nPHONE: PHONE\nEMAIL: EMAIL",
                        enum_type=IdentityKind,
                        max_length=24,
                    ),
                ),
                ("scope", fields.CharField(default="", max_length=64)),
                ("value", fields.CharField(max_length=128)),
                (
                    "channel",
                    fields.CharEnumField(
                        description="Channel that linked it", enum_type=Channel, max_length=24
                    ),
                ),
                ("linked_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "channel_identity",
                "app": "loyalty",
                "unique_together": (("kind", "scope", "value"),),
                "indexes": [Index(fields=["member_id", "id"], name="channel_identity_member_idx")],
                "pk_attr": "id",
                "table_description": "One way a channel knows a member. ``(kind, scope, value)`` is unique.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Consent",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "member",
                    fields.ForeignKeyField(
                        "loyalty.Member",
                        source_field="member_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="consents",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "purpose",
                    fields.CharEnumField(
                        description="MARKETING_SMS: MARKETING_SMS\nMARKETING_EMAIL: MARKETING_EMAIL\nMARKETING_PUSH: MARKETING_PUSH\nMARKETING_WECHAT: MARKETING_WECHAT\nPROFILING: PROFILING",
                        enum_type=ConsentPurpose,
                        max_length=24,
                    ),
                ),
                ("granted", fields.BooleanField()),
                (
                    "channel",
                    fields.CharEnumField(
                        description="Where it was given", enum_type=Channel, max_length=24
                    ),
                ),
                ("policy_version", fields.CharField(max_length=32)),
                ("recorded_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "consent",
                "app": "loyalty",
                "indexes": [
                    Index(fields=["member_id", "purpose", "id"], name="consent_member_idx")
                ],
                "pk_attr": "id",
                "table_description": "One consent decision (append-only): the member's current state per purpose is the",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="MemberCategoryStat",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "member",
                    fields.ForeignKeyField(
                        "loyalty.Member",
                        source_field="member_id",
                        db_constraint=True,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("category", fields.CharField(max_length=64)),
                ("spend", fields.BigIntField(default=0)),
                ("quantity", fields.BigIntField(default=0)),
                ("order_count", fields.IntField(default=0)),
            ],
            options={
                "table": "member_category_stat",
                "app": "loyalty",
                "unique_together": (("member_id", "category"),),
                "pk_attr": "id",
                "table_description": "Per member and category: spend and quantity, kept at order time (favourites).",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="MemberMerge",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("idempotency_key", fields.CharField(unique=True, max_length=128)),
                ("survivor_id", fields.BigIntField()),
                ("merged_id", fields.BigIntField(unique=True)),
                ("actor", fields.CharField(max_length=128)),
                ("merged_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "member_merge",
                "app": "loyalty",
                "pk_attr": "id",
                "table_description": "A completed merge, keyed by the caller's idempotency key (ids only, no personal data).",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="MemberTag",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "member",
                    fields.ForeignKeyField(
                        "loyalty.Member",
                        source_field="member_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="tag_rows",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("tag", fields.CharField(max_length=32)),
            ],
            options={
                "table": "member_tag",
                "app": "loyalty",
                "unique_together": (("member_id", "tag"),),
                "indexes": [Index(fields=["tag", "member_id"], name="member_tag_tag_idx")],
                "pk_attr": "id",
                "table_description": "A member's tag as its own row, so tag filters are portable (``Member.tags`` mirrors it).",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Order",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("channel", fields.CharField(max_length=24)),
                ("external_id", fields.CharField(max_length=128)),
                ("request_hash", fields.CharField(max_length=64)),
                (
                    "member",
                    fields.ForeignKeyField(
                        "loyalty.Member",
                        source_field="member_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("guest_identity_kind", fields.CharField(null=True, max_length=24)),
                ("guest_identity_scope", fields.CharField(null=True, max_length=64)),
                ("guest_identity_value", fields.CharField(null=True, max_length=128)),
                ("store_id", fields.CharField(null=True, max_length=64)),
                ("occurred_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("recorded_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                (
                    "attached_at",
                    fields.DatetimeField(
                        null=True,
                        description="When a guest order got its member",
                        auto_now=False,
                        auto_now_add=False,
                    ),
                ),
                ("currency", fields.CharField(max_length=3)),
                ("subtotal", fields.BigIntField(description="Σ quantity × unit price")),
                ("discount_total", fields.BigIntField(default=0)),
                (
                    "points_payment",
                    fields.BigIntField(default=0, description="Part paid with points (money)"),
                ),
                (
                    "paid_amount",
                    fields.BigIntField(description="subtotal − discounts − points payment"),
                ),
                (
                    "refunded_amount",
                    fields.BigIntField(default=0, description="Paid amount refunded so far"),
                ),
                (
                    "points_earned",
                    fields.BigIntField(default=0, description="Active points earned"),
                ),
                (
                    "points_pending",
                    fields.BigIntField(default=0, description="Points waiting for activation"),
                ),
                ("balance_after", fields.BigIntField(null=True)),
                ("tier_change", fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads)),
                (
                    "rules_applied",
                    fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads),
                ),
            ],
            options={
                "table": "customer_order",
                "app": "loyalty",
                "unique_together": (("channel", "external_id"),),
                "indexes": [
                    Index(
                        fields=["member_id", "occurred_at", "id"], name="customer_order_member_idx"
                    ),
                    Index(
                        fields=[
                            "guest_identity_kind",
                            "guest_identity_scope",
                            "guest_identity_value",
                        ],
                        name="customer_order_guest_idx",
                    ),
                ],
                "pk_attr": "id",
                "table_description": "One order, unique on ``(channel, external_id)``.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="OrderLine",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "order",
                    fields.ForeignKeyField(
                        "loyalty.Order",
                        source_field="order_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="lines",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("line_no", fields.IntField()),
                ("sku", fields.CharField(max_length=64)),
                ("name", fields.CharField(null=True, max_length=200)),
                ("category", fields.CharField(null=True, max_length=64)),
                ("quantity", fields.IntField()),
                ("unit_price", fields.BigIntField()),
                ("gross", fields.BigIntField()),
                ("discount", fields.BigIntField(default=0)),
                ("points_payment", fields.BigIntField(default=0)),
                ("paid", fields.BigIntField()),
                ("points", fields.BigIntField(default=0)),
                ("refunded_quantity", fields.IntField(default=0)),
                ("refunded_paid", fields.BigIntField(default=0)),
                ("points_reversed", fields.BigIntField(default=0)),
                (
                    "points_returned",
                    fields.BigIntField(default=0, description="Redeemed points given back"),
                ),
            ],
            options={
                "table": "customer_order_line",
                "app": "loyalty",
                "unique_together": (("order_id", "line_no"),),
                "pk_attr": "id",
                "table_description": "One order line. ``paid`` is its share of the paid amount, ``points`` its share of the",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="PendingEarning",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "member",
                    fields.ForeignKeyField(
                        "loyalty.Member",
                        source_field="member_id",
                        db_constraint=True,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("order_id", fields.BigIntField(unique=True)),
                ("amount", NonNegativeBigIntField(description="Still pending (refunds reduce it)")),
                ("original_amount", fields.BigIntField()),
                (
                    "status",
                    fields.CharEnumField(
                        default=PendingStatus.PENDING,
                        description="PENDING: PENDING\nACTIVATED: ACTIVATED\nCANCELLED: CANCELLED",
                        enum_type=PendingStatus,
                        max_length=16,
                    ),
                ),
                ("activates_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                (
                    "activated_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
            ],
            options={
                "table": "points_pending",
                "app": "loyalty",
                "indexes": [
                    Index(fields=["status", "activates_at"], name="points_pending_due_idx")
                ],
                "pk_attr": "id",
                "table_description": "Points earned on an order that become active after the return window.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="PointsAccount",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "member",
                    fields.OneToOneField(
                        "loyalty.Member",
                        source_field="member_id",
                        db_constraint=True,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("balance", NonNegativeBigIntField(default=0, description="Spendable points")),
                (
                    "pending",
                    NonNegativeBigIntField(default=0, description="Earned, not yet active"),
                ),
                (
                    "debt",
                    NonNegativeBigIntField(
                        default=0, description="Clawback not covered by the balance"
                    ),
                ),
            ],
            options={
                "table": "points_account",
                "app": "loyalty",
                "pk_attr": "id",
                "table_description": "Per-member cache of the ledger: changed only by conditional single-statement UPDATEs.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="PointsEntry",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "member",
                    fields.ForeignKeyField(
                        "loyalty.Member",
                        source_field="member_id",
                        db_constraint=True,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "kind",
                    fields.CharEnumField(
                        description="EARN: EARN\nREDEEM: REDEEM\nEXPIRE: EXPIRE\nADJUST: ADJUST\nREVERSE: REVERSE\nDEBT: DEBT\nSETTLE: SETTLE\nRESTORE: RESTORE",
                        enum_type=EntryKind,
                        max_length=16,
                    ),
                ),
                ("amount", fields.BigIntField(description="Signed change of the balance")),
                (
                    "debt_delta",
                    fields.BigIntField(default=0, description="Signed change of the debt"),
                ),
                ("idempotency_key", fields.CharField(unique=True, max_length=191)),
                ("request_hash", fields.CharField(null=True, max_length=64)),
                (
                    "source_type",
                    fields.CharEnumField(
                        description="ORDER: ORDER\nREFUND: REFUND\nREDEMPTION: REDEMPTION\nCAMPAIGN: CAMPAIGN\nACTIVITY: ACTIVITY\nADMIN: ADMIN\nSYSTEM: SYSTEM",
                        enum_type=SourceType,
                        max_length=16,
                    ),
                ),
                (
                    "source_ref",
                    fields.CharField(null=True, description="Order / refund / key", max_length=191),
                ),
                (
                    "order_id",
                    fields.BigIntField(null=True, description="Order this entry belongs to"),
                ),
                ("order_channel", fields.CharField(null=True, max_length=24)),
                ("order_external_id", fields.CharField(null=True, max_length=128)),
                (
                    "reverses_entry_id",
                    fields.BigIntField(null=True, description="Redemption a RESTORE undoes"),
                ),
                (
                    "reason",
                    fields.CharField(
                        null=True, description="Free text (admin reason)", max_length=500
                    ),
                ),
                ("actor", fields.CharField(null=True, max_length=128)),
                ("remaining", NonNegativeBigIntField(null=True)),
                ("expires_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("balance_after", fields.BigIntField(null=True)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "points_entry",
                "app": "loyalty",
                "indexes": [
                    Index(fields=["member_id", "id"], name="points_entry_member_idx"),
                    Index(
                        fields=["member_id", "remaining", "expires_at"], name="points_lot_open_idx"
                    ),
                    Index(fields=["expires_at", "remaining"], name="points_lot_expiry_idx"),
                    Index(fields=["order_id", "kind"], name="points_entry_order_idx"),
                    Index(
                        fields=["order_channel", "order_external_id"],
                        name="points_entry_order_ref_idx",
                    ),
                ],
                "pk_attr": "id",
                "table_description": "One append-only ledger line. ``amount`` is the signed change of the balance.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="PointsAllocation",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("member_id", fields.BigIntField()),
                (
                    "entry",
                    fields.ForeignKeyField(
                        "loyalty.PointsEntry",
                        source_field="entry_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="allocations",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "lot",
                    fields.ForeignKeyField(
                        "loyalty.PointsEntry",
                        source_field="lot_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="drawn_by",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("amount", fields.BigIntField()),
            ],
            options={
                "table": "points_allocation",
                "app": "loyalty",
                "indexes": [
                    Index(fields=["member_id", "entry_id"], name="points_allocation_member_idx")
                ],
                "pk_attr": "id",
                "table_description": "How much an entry took from (positive) or returned to (negative) one lot.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="PointsProgram",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "expiry_months",
                    fields.IntField(null=True, default=12, description="Null: never expire"),
                ),
                ("pending_days", fields.IntField(default=0)),
                ("guest_attach_window_days", fields.IntField(default=30)),
                ("per_order_cap", fields.BigIntField(null=True)),
                ("per_day_cap", fields.BigIntField(null=True)),
                ("updated_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "points_program",
                "app": "loyalty",
                "pk_attr": "id",
                "table_description": "Program-wide tunables (a single row, id 1), editable by admins.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="RefreshToken",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "family",
                    fields.CharField(
                        description="Login session the token belongs to", max_length=32
                    ),
                ),
                (
                    "token_hash",
                    fields.CharField(unique=True, description="sha256 hex", max_length=64),
                ),
                ("subject", fields.CharField(max_length=128)),
                ("role", fields.CharField(max_length=16)),
                ("member_id", fields.BigIntField(null=True)),
                ("channel", fields.CharField(null=True, max_length=24)),
                ("store_id", fields.CharField(null=True, max_length=64)),
                ("scopes", fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ("issued_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("expires_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("used_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("revoked_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "refresh_token",
                "app": "loyalty",
                "indexes": [
                    Index(fields=["family"], name="refresh_token_family_idx"),
                    Index(fields=["member_id"], name="refresh_token_member_idx"),
                ],
                "pk_attr": "id",
                "table_description": "One refresh token of a login session (``family``). Rotated on every use: the used",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Refund",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "order",
                    fields.ForeignKeyField(
                        "loyalty.Order",
                        source_field="order_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="refunds",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("member_id", fields.BigIntField(null=True)),
                ("external_id", fields.CharField(max_length=128)),
                ("request_hash", fields.CharField(max_length=64)),
                ("whole", fields.BooleanField(default=False)),
                ("amount", fields.BigIntField(description="Paid amount refunded (minor units)")),
                (
                    "points_reversed",
                    fields.BigIntField(default=0, description="Earned points clawed back"),
                ),
                ("debt_created", fields.BigIntField(default=0)),
                ("pending_cancelled", fields.BigIntField(default=0)),
                (
                    "points_returned",
                    fields.BigIntField(default=0, description="Redeemed points given back"),
                ),
                (
                    "points_forfeited",
                    fields.BigIntField(default=0, description="…to lots already expired"),
                ),
                ("balance_after", fields.BigIntField(null=True)),
                (
                    "lines",
                    fields.JSONField(
                        default=list,
                        description="[{line_no, quantity, paid}]",
                        encoder=JSON_DUMPS,
                        decoder=loads,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "order_refund",
                "app": "loyalty",
                "unique_together": (("order_id", "external_id"),),
                "indexes": [Index(fields=["member_id", "id"], name="order_refund_member_idx")],
                "pk_attr": "id",
                "table_description": "A refund of some lines (or all) of an order, unique on ``(order, external_id)``.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Tier",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("code", fields.CharField(unique=True, max_length=32)),
                ("name", fields.CharField(max_length=64)),
                ("rank", fields.SmallIntField(unique=True)),
                (
                    "metric",
                    fields.CharEnumField(
                        default=Metric.SPEND,
                        description="SPEND: SPEND\nPOINTS: POINTS\nORDERS: ORDERS",
                        enum_type=Metric,
                        max_length=16,
                    ),
                ),
                ("threshold", fields.BigIntField(default=0)),
                (
                    "window",
                    fields.CharEnumField(
                        default=Window.ROLLING_DAYS,
                        description="ROLLING_DAYS: ROLLING_DAYS\nCALENDAR_YEAR: CALENDAR_YEAR",
                        enum_type=Window,
                        max_length=16,
                    ),
                ),
                ("window_days", fields.IntField(null=True)),
                (
                    "retention_days",
                    fields.IntField(null=True, description="Null: the tier never expires"),
                ),
                (
                    "multiplier_permille",
                    fields.IntField(default=1000, description="Points multiplier, 1000 = x1"),
                ),
                ("description", fields.TextField(default="", unique=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={
                "table": "tier",
                "app": "loyalty",
                "pk_attr": "id",
                "table_description": "One rung of the ladder. The lowest rank is the entry tier (threshold 0).",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="MemberTier",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "member",
                    fields.OneToOneField(
                        "loyalty.Member",
                        source_field="member_id",
                        db_constraint=True,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "tier",
                    fields.ForeignKeyField(
                        "loyalty.Tier",
                        source_field="tier_id",
                        db_constraint=True,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("since", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                (
                    "expires_at",
                    fields.DatetimeField(
                        null=True,
                        description="Review date (null: never)",
                        auto_now=False,
                        auto_now_add=False,
                    ),
                ),
                (
                    "locked_until",
                    fields.DatetimeField(
                        null=True,
                        description="Review leaves it alone until",
                        auto_now=False,
                        auto_now_add=False,
                    ),
                ),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={
                "table": "member_tier",
                "app": "loyalty",
                "indexes": [Index(fields=["expires_at"], name="member_tier_expires_idx")],
                "pk_attr": "id",
                "table_description": "A member's current tier. No row means the entry tier.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="TierChange",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "member",
                    fields.ForeignKeyField(
                        "loyalty.Member",
                        source_field="member_id",
                        db_constraint=True,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("from_code", fields.CharField(null=True, max_length=32)),
                ("to_code", fields.CharField(max_length=32)),
                (
                    "reason",
                    fields.CharEnumField(
                        description="ORDER: ORDER\nREVIEW: REVIEW\nADMIN: ADMIN\nRULE_CHANGE: RULE_CHANGE\nMERGE: MERGE",
                        enum_type=ChangeReason,
                        max_length=16,
                    ),
                ),
                (
                    "actor",
                    fields.CharField(description="Principal subject or `system`", max_length=128),
                ),
                ("order_id", fields.BigIntField(null=True)),
                ("metric_value", fields.BigIntField(null=True)),
                ("note", fields.CharField(null=True, max_length=255)),
                ("at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "tier_change",
                "app": "loyalty",
                "indexes": [Index(fields=["member_id", "at"], name="tier_change_member_idx")],
                "pk_attr": "id",
                "table_description": "History: one row per tier change, with reason and actor. Codes survive renames.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="TierEntitlement",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "tier",
                    fields.ForeignKeyField(
                        "loyalty.Tier",
                        source_field="tier_id",
                        db_constraint=True,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "benefit",
                    fields.ForeignKeyField(
                        "loyalty.Benefit",
                        source_field="benefit_id",
                        db_constraint=True,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "period",
                    fields.CharEnumField(
                        description="DAY: DAY\nWEEK: WEEK\nMONTH: MONTH\nYEAR: YEAR\nLIFETIME: LIFETIME\nUNLIMITED: UNLIMITED",
                        enum_type=QuotaPeriod,
                        max_length=16,
                    ),
                ),
                (
                    "quota",
                    fields.IntField(null=True, description="Uses per period (null when UNLIMITED)"),
                ),
                ("excluded", fields.BooleanField(default=False)),
            ],
            options={
                "table": "tier_entitlement",
                "app": "loyalty",
                "unique_together": (("tier", "benefit"),),
                "pk_attr": "id",
                "table_description": "Benefit x tier with a quota per period. Higher tiers inherit it unless they override it,",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="TierPolicy",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "downgrade_policy",
                    fields.CharEnumField(
                        default=DowngradePolicy.ONE_DOWN,
                        description="ONE_DOWN: ONE_DOWN\nRECALCULATE: RECALCULATE",
                        enum_type=DowngradePolicy,
                        max_length=16,
                    ),
                ),
                (
                    "notice_days",
                    fields.IntField(default=30, description="Downgrade notice, days ahead"),
                ),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={
                "table": "tier_policy",
                "app": "loyalty",
                "pk_attr": "id",
                "table_description": "Program-wide tier settings (a single row, id 1).",
            },
            bases=["Model"],
        ),
    ]
