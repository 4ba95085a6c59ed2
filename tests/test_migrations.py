"""Migrations are complete (match the models) and apply cleanly on this backend.

Applying runs in a subprocess (`loyalty migrate`): initialising Tortoise a second time in
this process would rebind the models away from the session's database.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
from tortoise.migrations.autodetector import MigrationAutodetector

from loyalty import db
from tests.conftest import BACKEND, drop_pg_database


async def test_models_have_no_changes_missing_from_migrations(orm: Any) -> None:
    config = db.tortoise_config("sqlite://:memory:")
    writers = await MigrationAutodetector(orm.apps, config["apps"]).changes()
    pending = [
        f"{type(op).__name__}({getattr(op, 'name', '') or getattr(op, 'model_name', '')})"
        for writer in writers
        for op in writer.operations
    ]
    assert not pending, (
        f"models changed without a migration; run `make migrations` and commit the file: {pending}"
    )


def test_schema_comments_have_no_semicolons(orm: Any) -> None:
    """Table and column comments end up in the migration SQL, and the SQLite migration
    executor splits scripts on ``;``: a semicolon in a docstring breaks ``migrate``."""
    offenders: list[str] = []
    for model in orm.apps.get_models_iterable():
        meta = model._meta
        if ";" in (meta.table_description or ""):
            offenders.append(f"{meta.db_table} (docstring)")
        for name, field in meta.fields_map.items():
            if ";" in (field.description or ""):
                offenders.append(f"{meta.db_table}.{name}")
    assert not offenders, f"replace ';' in these descriptions: {offenders}"


def _migrate(url: str, cwd: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_")}
    env["LOYALTY_DATABASE_URL"] = url
    loyalty = Path(sys.executable).with_name("loyalty")
    result = subprocess.run(
        [str(loyalty), "migrate"], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


async def test_migrations_apply_to_a_fresh_database(
    tmp_path: Path, database_url: str, orm: Any
) -> None:
    expected = {m._meta.db_table for m in orm.apps.get_models_iterable()}
    if BACKEND == "sqlite":
        path = tmp_path / "migrated.sqlite3"
        _migrate(f"sqlite://{path}", tmp_path)
        _migrate(f"sqlite://{path}", tmp_path)  # a second run applies nothing
        with sqlite3.connect(path) as conn:
            rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        tables = {row[0] for row in rows}
    else:
        url = database_url + "_mig"
        try:
            _migrate(url, tmp_path)
            _migrate(url, tmp_path)
            conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
            try:
                rows = await conn.fetch(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                )
            finally:
                await conn.close()
            tables = {row[0] for row in rows}
        finally:
            await drop_pg_database(url)
    assert expected <= tables, f"tables missing after migrate: {expected - tables}"
