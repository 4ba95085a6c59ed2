from tortoise import migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("loyalty", "0004_scope")]

    initial = False

    operations = [
        # Tier assignments were audited under the kind `member`: every other entry about a
        # member says `Member`, which is what a global id selects.
        ops.RunSQL(
            "UPDATE audit_entry SET target_type = 'Member' WHERE target_type = 'member'",
            reverse_sql="SELECT 1",
        ),
    ]
