from orjson import loads
from tortoise import fields, migrations
from tortoise.fields.data import JSON_DUMPS
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("loyalty", "0007_job_runs")]

    initial = False

    operations = [
        ops.CreateModel(
            name="WebhookEndpoint",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("url", fields.CharField(max_length=2000)),
                (
                    "secret",
                    fields.CharField(
                        description="HMAC-SHA256 key of the signatures", max_length=128
                    ),
                ),
                (
                    "event_kinds",
                    fields.JSONField(
                        default=list,
                        description="Subscribed event kinds (exact, or a family as member.*)",
                        encoder=JSON_DUMPS,
                        decoder=loads,
                    ),
                ),
                ("active", fields.BooleanField(default=True)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                (
                    "deactivated_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
            ],
            options={
                "table": "webhook_endpoint",
                "app": "loyalty",
                "pk_attr": "id",
                "table_description": "A receiver of domain events over HTTP, signed with its secret, while it is active.",
            },
            bases=["Model"],
        ),
    ]
