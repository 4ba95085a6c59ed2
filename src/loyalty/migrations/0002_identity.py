from tortoise import fields, migrations
from tortoise.indexes import Index
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("loyalty", "0001_initial")]

    initial = False

    operations = [
        ops.CreateModel(
            name="DuplicateHint",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("member_a_id", fields.BigIntField(description="The lower member id")),
                ("member_b_id", fields.BigIntField(description="The higher member id")),
                ("reason", fields.CharField(max_length=32)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "member_duplicate_hint",
                "app": "loyalty",
                "unique_together": (("member_a_id", "member_b_id", "reason"),),
                "pk_attr": "id",
                "table_description": "Evidence that two members are one person, where no identity row can hold it.",
            },
            bases=["Model"],
        ),
        ops.AddField(
            model_name="AuditEntry",
            name="related_id",
            field=fields.CharField(
                null=True,
                description="A second object of the same type the action was about (the merged member)",
                max_length=64,
            ),
        ),
        ops.AddIndex(
            model_name="AuditEntry",
            index=Index(fields=["target_type", "related_id"], name="audit_related_idx"),
        ),
    ]
