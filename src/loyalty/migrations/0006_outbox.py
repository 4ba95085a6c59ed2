from uuid import uuid4

from orjson import loads
from tortoise import fields, migrations
from tortoise.fields.data import JSON_DUMPS
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from loyalty.outbox.models import OutboxStatus


class Migration(migrations.Migration):
    dependencies = [("loyalty", "0005_audit_member_kind")]

    initial = False

    operations = [
        ops.CreateModel(
            name="OutboxMessage",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                ("kind", fields.CharField(max_length=64)),
                ("dedupe_key", fields.CharField(unique=True, max_length=191)),
                ("member_id", fields.BigIntField(null=True)),
                ("payload", fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=loads)),
                (
                    "status",
                    fields.CharEnumField(
                        default=OutboxStatus.PENDING,
                        description="PENDING: PENDING\nIN_FLIGHT: IN_FLIGHT\nSENT: SENT\nFAILED: FAILED\nDEAD: DEAD\nSUPPRESSED: SUPPRESSED",
                        enum_type=OutboxStatus,
                        max_length=16,
                    ),
                ),
                ("suppressed_reason", fields.CharField(null=True, max_length=191)),
                (
                    "attempts",
                    fields.IntField(default=0, description="Claims so far (a crashed one counts)"),
                ),
                ("next_attempt_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("last_error", fields.TextField(null=True, unique=False)),
                ("claimed_by", fields.CharField(null=True, max_length=64)),
                (
                    "claimed_until",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("sent_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "outbox",
                "app": "loyalty",
                "indexes": [
                    Index(fields=["status", "next_attempt_at"], name="outbox_due_idx"),
                    Index(fields=["member_id"], name="outbox_member_idx"),
                ],
                "pk_attr": "id",
                "table_description": "A delivery out of a transaction, written in the same transaction as the change.",
            },
            bases=["Model"],
        ),
        # Domain events move onto the outbox with their ids: published ones as SENT, the rest
        # PENDING and due now.
        ops.RunSQL(
            "INSERT INTO outbox (id, kind, dedupe_key, member_id, payload, status, attempts, "
            "next_attempt_at, created_at, sent_at) "
            "SELECT id, kind, dedupe_key, member_id, payload, "
            "CASE WHEN published_at IS NULL THEN 'PENDING' ELSE 'SENT' END, attempts, "
            "created_at, created_at, published_at FROM event",
            reverse_sql="INSERT INTO event (id, kind, dedupe_key, member_id, payload, "
            "created_at, published_at, attempts) "
            "SELECT id, kind, dedupe_key, member_id, payload, created_at, sent_at, attempts "
            "FROM outbox",
        ),
        ops.DeleteModel(name="Event"),
    ]
