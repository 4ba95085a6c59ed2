from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("loyalty", "0003_idem")]

    initial = False

    operations = [
        ops.CreateModel(
            name="JobRequest",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("key", fields.CharField(unique=True, max_length=191)),
                ("function", fields.CharField(max_length=64)),
                ("args", fields.TextField(default="[]", description="Job arguments, a JSON array")),
                ("requests", fields.BigIntField(default=0)),
                ("done", fields.BigIntField(default=0)),
                ("requested_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("done_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "job_request",
                "app": "loyalty",
                "pk_attr": "id",
                "table_description": "Work asked for by a committed change, kept until a job has done it (a job outbox).",
            },
            bases=["Model"],
        ),
    ]
