from orjson import loads
from tortoise import fields, migrations
from tortoise.fields.data import JSON_DUMPS
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from loyalty.worker.models import ChunkStatus, RunStatus


class Migration(migrations.Migration):
    dependencies = [("loyalty", "0006_outbox")]

    initial = False

    operations = [
        ops.CreateModel(
            name="JobRun",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("name", fields.CharField(max_length=64)),
                (
                    "period",
                    fields.CharField(description="Business date, YYYY-MM-DD", max_length=32),
                ),
                (
                    "status",
                    fields.CharEnumField(
                        default=RunStatus.RUNNING,
                        description="RUNNING: RUNNING\nSUCCEEDED: SUCCEEDED\nFAILED: FAILED\nPARTIAL: PARTIAL",
                        enum_type=RunStatus,
                        max_length=16,
                    ),
                ),
                (
                    "trigger",
                    fields.CharField(default="cron", description="cron, cli or api", max_length=16),
                ),
                ("members_total", fields.BigIntField(default=0)),
                ("chunk_size", fields.IntField()),
                ("chunks_total", fields.IntField(default=0)),
                ("chunks_done", fields.IntField(default=0)),
                ("counts", fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=loads)),
                ("errors", fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                (
                    "retry_of",
                    fields.BigIntField(
                        null=True, description="The run whose failed members this re-runs"
                    ),
                ),
                ("started_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                (
                    "finished_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
            ],
            options={
                "table": "job_run",
                "app": "loyalty",
                "indexes": [Index(fields=["name", "started_at"], name="job_run_name_idx")],
                "pk_attr": "id",
                "table_description": "A run of a batch job over members for one business date (``period``).",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="JobRunChunk",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("run_id", fields.BigIntField()),
                ("chunk", fields.IntField()),
                (
                    "status",
                    fields.CharEnumField(
                        default=ChunkStatus.PENDING,
                        description="PENDING: PENDING\nDONE: DONE",
                        enum_type=ChunkStatus,
                        max_length=16,
                    ),
                ),
                (
                    "member_ids",
                    fields.JSONField(
                        default=list,
                        description="Members of the chunk, until done",
                        encoder=JSON_DUMPS,
                        decoder=loads,
                    ),
                ),
                ("sends", fields.IntField(default=0, description="Arq jobs queued for the chunk")),
                (
                    "last_sent_at",
                    fields.DatetimeField(
                        null=True,
                        description="Start of the current lease",
                        auto_now=False,
                        auto_now_add=False,
                    ),
                ),
                ("counts", fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=loads)),
                (
                    "failed_ids",
                    fields.JSONField(
                        default=list,
                        description="Members that failed in the chunk",
                        encoder=JSON_DUMPS,
                        decoder=loads,
                    ),
                ),
                (
                    "finished_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
            ],
            options={
                "table": "job_run_chunk",
                "app": "loyalty",
                "unique_together": (("run_id", "chunk"),),
                "pk_attr": "id",
                "table_description": "One chunk of a run, written with the run: its members, so the chunk can be sent again",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="TierReview",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("member_id", fields.BigIntField()),
                (
                    "business_date",
                    fields.DateField(description="The business day the review stands for"),
                ),
                (
                    "outcome",
                    fields.CharField(
                        description="renewed, downgraded, upgraded, kept", max_length=32
                    ),
                ),
                ("run_id", fields.BigIntField(null=True, description="The job run that did it")),
                ("at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "tier_review",
                "app": "loyalty",
                "unique_together": (("member_id", "business_date"),),
                "pk_attr": "id",
                "table_description": "One member's review for one business date: the key that makes a review idempotent.",
            },
            bases=["Model"],
        ),
    ]
