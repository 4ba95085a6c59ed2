"""Upgrading a database with claims: each keeps its member as the scope of its key.

Runs the migrations in subprocesses up to the release before claim keys were scoped, writes
claims with raw SQL, then applies the rest (on this backend).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.conftest import BACKEND, PG_ADMIN_URL, drop_pg_database

MEMBERS = (
    "INSERT INTO member (id, display_name, status, lifecycle_stage, registered_channel, "
    "registered_at, gender, total_spend, order_count, tags, created_at, updated_at) VALUES "
    "(1, 'a', 'ACTIVE', 'NEW', 'APP', '2024-01-01', 'UNDISCLOSED', 0, 0, '[]', '2024-01-01', "
    "'2024-01-01'), (2, 'b', 'ACTIVE', 'NEW', 'APP', '2024-01-01', 'UNDISCLOSED', 0, 0, '[]', "
    "'2024-01-01', '2024-01-01')"
)
BENEFIT = (
    "INSERT INTO benefit (id, code, name, kind, channels, active, created_at, updated_at, "
    "description, config) VALUES (1, 'B', 'b', 'CUSTOM', '[]', {true}, '2024-01-01', "
    "'2024-01-01', '', '{{}}')"
)
CLAIMS = (
    "INSERT INTO benefit_claim (channel, idempotency_key, status, tier_code, created_at, "
    "benefit_id, member_id) VALUES ('APP', 'k', 'CLAIMED', 'BASIC', '2024-01-01', 1, 1), "
    "('APP', 'k', 'CLAIMED', 'BASIC', '2024-01-01', 1, 2)"
)
NEW_CLAIM = (
    "INSERT INTO benefit_claim (channel, idempotency_key, status, tier_code, created_at, "
    "benefit_id, member_id, key_member_id) VALUES ('APP', 'k', 'CLAIMED', 'BASIC', "
    "'2024-01-01', 1, 1, {scope})"
)
CHECK = "SELECT id, member_id, key_member_id FROM benefit_claim ORDER BY id"


def _migrate(url: str, cwd: Path, *target: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_")}
    env["LOYALTY_DATABASE_URL"] = url
    tortoise = Path(sys.executable).with_name("tortoise")
    result = subprocess.run(
        [str(tortoise), "-c", "loyalty.db.TORTOISE_ORM", "migrate", *target],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


async def test_existing_claims_keep_their_member_as_the_key_scope(
    tmp_path: Path, database_url: str, orm: Any
) -> None:
    if BACKEND == "sqlite":
        path = tmp_path / "upgrade.sqlite3"
        url = f"sqlite://{path}"
        _migrate(url, tmp_path, "loyalty", "0002_identity")
        with sqlite3.connect(path) as conn:
            conn.execute(MEMBERS)
            conn.execute(BENEFIT.format(true=1))
            conn.execute(CLAIMS)
        _migrate(url, tmp_path)
        with sqlite3.connect(path) as conn:
            rows = [tuple(r) for r in conn.execute(CHECK).fetchall()]
            indexes = {
                r[0]
                for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'index' "
                    "AND tbl_name = 'benefit_claim'"
                )
            }
            with pytest.raises(sqlite3.IntegrityError):
                conn.execute(NEW_CLAIM.format(scope=1))  # (1, "k") is taken
            conn.execute(NEW_CLAIM.format(scope=3))  # the same key on member 1, asked for 3
            count = conn.execute("SELECT count(*) FROM benefit_claim").fetchone()[0]
    else:
        url = database_url + "_claims"
        admin = await asyncpg.connect(PG_ADMIN_URL.replace("postgres://", "postgresql://", 1))
        try:
            await admin.execute(f'CREATE DATABASE "{url.rsplit("/", 1)[1]}"')
        finally:
            await admin.close()
        try:
            _migrate(url, tmp_path, "loyalty", "0002_identity")
            conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
            try:
                await conn.execute(MEMBERS)
                await conn.execute(BENEFIT.format(true="true"))
                await conn.execute(CLAIMS)
            finally:
                await conn.close()
            _migrate(url, tmp_path)
            conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
            try:
                rows = [tuple(r) for r in await conn.fetch(CHECK)]
                indexes = {
                    r[0]
                    for r in await conn.fetch(
                        "SELECT indexname FROM pg_indexes WHERE tablename = 'benefit_claim'"
                    )
                }
                with pytest.raises(asyncpg.UniqueViolationError):
                    await conn.execute(NEW_CLAIM.format(scope=1))
                await conn.execute(NEW_CLAIM.format(scope=3))
                count = await conn.fetchval("SELECT count(*) FROM benefit_claim")
            finally:
                await conn.close()
        finally:
            await drop_pg_database(url)

    assert rows[:2] == [(1, 1, 1), (2, 2, 2)]
    assert count == 3
    assert {"benefit_claim_hold_idx", "benefit_claim_member_idx"} <= indexes
