"""Migrations are complete (match the models) and apply cleanly on this backend."""

from __future__ import annotations

from pathlib import Path

from tortoise import Tortoise
from tortoise.context import TortoiseContext
from tortoise.migrations.autodetector import MigrationAutodetector

from loyalty import db
from tests.conftest import BACKEND, drop_pg_database


async def test_models_have_no_changes_missing_from_migrations(tmp_path: Path) -> None:
    config = db.tortoise_config(f"sqlite://{tmp_path / 'detect.sqlite3'}")
    async with TortoiseContext() as ctx:
        await ctx.init(config=config)
        assert ctx.apps is not None
        writers = await MigrationAutodetector(ctx.apps, config["apps"]).changes()
        await ctx.close_connections()
    pending = [
        f"{type(op).__name__}({getattr(op, 'name', '') or getattr(op, 'model_name', '')})"
        for writer in writers
        for op in writer.operations
    ]
    assert not pending, (
        "models changed without a migration; run "
        "`tortoise -c loyalty.db.TORTOISE_ORM makemigrations` and commit the file: "
        f"{pending}"
    )


async def test_migrations_apply_to_a_fresh_database(tmp_path: Path, database_url: str) -> None:
    if BACKEND == "sqlite":
        url = f"sqlite://{tmp_path / 'migrated.sqlite3'}"
    else:
        url = database_url.rsplit("/", 1)[0] + "/" + database_url.rsplit("/", 1)[1] + "_mig"
    try:
        await db.migrate(url, create_db=BACKEND == "postgres")
        await db.migrate(url)  # a second run applies nothing and does not fail
        config = db.tortoise_config(url)
        async with TortoiseContext() as ctx:
            await ctx.init(config=config)
            conn = ctx.db()
            if BACKEND == "sqlite":
                rows = await conn.execute_query_dict(
                    "SELECT name FROM sqlite_master WHERE type = 'table'"
                )
            else:
                rows = await conn.execute_query_dict(
                    "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public'"
                )
            tables = {row["name"] for row in rows}
            expected = {m._meta.db_table for m in ctx.apps.get_models_iterable()}  # type: ignore[union-attr]
            await ctx.close_connections()
        assert expected <= tables, f"tables missing after migrate: {expected - tables}"
    finally:
        if BACKEND == "postgres":
            await drop_pg_database(url)
    assert Tortoise is not None
