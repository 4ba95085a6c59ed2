"""Benefit claim keys belong to the member a claim was asked for, not the member it is on.

A merge moves claims to the survivor and no longer has to rename clashing keys; a retry
against the merged member finds its first claim. Existing claims take the member they are
on now as that scope, so every existing key stays unique.

SQLite cannot drop a table constraint or make a column NOT NULL in place: there the table is
rebuilt from its own DDL with the one change, keeping its rows and indexes.
"""

import re
from collections.abc import Callable
from typing import Any

from tortoise import fields, migrations
from tortoise.indexes import Index
from tortoise.migrations import operations as ops
from tortoise.migrations.constraints import UniqueConstraint

TABLE = "benefit_claim"
DESCRIPTION = "The member the claim was asked for, before merges: the key's scope"


async def _rebuild_sqlite(editor: Any, change: Callable[[str], str]) -> None:
    client = editor.client
    _, tables = await client.execute_query(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", [TABLE]
    )
    ddl = str(tables[0]["sql"])
    new_ddl = change(ddl)
    if new_ddl == ddl:
        raise RuntimeError(f"{TABLE}: the table definition did not have the expected shape")
    _, index_rows = await client.execute_query(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
        [TABLE],
    )
    _, column_rows = await client.execute_query(f'PRAGMA table_info("{TABLE}")')
    columns = ", ".join(f'"{row["name"]}"' for row in column_rows)
    created = re.sub(
        rf'^CREATE TABLE (IF NOT EXISTS )?"?{TABLE}"?', f'CREATE TABLE "new__{TABLE}"', new_ddl
    )
    await client.execute_query(created)
    await client.execute_query(
        f'INSERT INTO "new__{TABLE}" ({columns}) SELECT {columns} FROM "{TABLE}"'  # nosec B608
    )
    await client.execute_query(f'DROP TABLE "{TABLE}"')
    await client.execute_query(f'ALTER TABLE "new__{TABLE}" RENAME TO "{TABLE}"')
    for row in index_rows:
        await client.execute_query(str(row["sql"]))


class _RequireKeyMember(ops.AlterField):
    async def database_forward(
        self, app_label: str, old_state: Any, new_state: Any, state_editor: Any = None
    ) -> None:
        if state_editor is None or state_editor.DIALECT != "sqlite":
            await super().database_forward(app_label, old_state, new_state, state_editor)
            return
        await _rebuild_sqlite(
            state_editor,
            lambda ddl: re.sub(
                r'("key_member_id" BIGINT)(?! NOT NULL)', r"\1 NOT NULL", ddl, count=1
            ),
        )


class _DropKeyPerMember(ops.RemoveConstraint):
    async def database_forward(
        self, app_label: str, old_state: Any, new_state: Any, state_editor: Any = None
    ) -> None:
        if state_editor is None or state_editor.DIALECT != "sqlite":
            await super().database_forward(app_label, old_state, new_state, state_editor)
            return
        await _rebuild_sqlite(
            state_editor,
            lambda ddl: re.sub(
                r',\s*CONSTRAINT "[^"]+" UNIQUE \("member_id", "idempotency_key"\)', "", ddl
            ),
        )


class Migration(migrations.Migration):
    dependencies = [("loyalty", "0002_identity")]

    initial = False

    operations = [
        ops.AddField(
            model_name="BenefitClaim",
            name="key_member_id",
            field=fields.BigIntField(null=True, description=DESCRIPTION),
        ),
        ops.RunSQL(
            f"UPDATE {TABLE} SET key_member_id = member_id WHERE key_member_id IS NULL",
            reverse_sql=ops.RunSQL.noop,
        ),
        _RequireKeyMember(
            model_name="BenefitClaim",
            name="key_member_id",
            field=fields.BigIntField(description=DESCRIPTION),
        ),
        _DropKeyPerMember(
            model_name="BenefitClaim",
            name=None,
            fields=["member", "idempotency_key"],
        ),
        ops.AddConstraint(
            model_name="BenefitClaim",
            constraint=UniqueConstraint(fields=("key_member_id", "idempotency_key"), name=None),
        ),
        ops.AddIndex(
            model_name="BenefitClaim",
            index=Index(fields=["member_id", "created_at"], name="benefit_claim_member_idx"),
        ),
        ops.AlterModelOptions(
            name="BenefitClaim",
            options={
                "pk_attr": "id",
                "table_description": "One use (or held use) of a benefit. "
                "``(key_member_id, idempotency_key)`` is unique.",
            },
        ),
    ]
