"""Upgrading a database with events: every event becomes an outbox row with its id, published
ones SENT, the rest PENDING and due (migrations run in subprocesses, on this backend)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import asyncpg

from tests.conftest import BACKEND, PG_ADMIN_URL, drop_pg_database
from tests.test_migration_claim_keys import _migrate

EVENTS = (
    "INSERT INTO event (id, kind, dedupe_key, member_id, payload, created_at, published_at, "
    "attempts) VALUES "
    "('00000000-0000-4000-8000-000000000001', 'member.registered', 'member.registered:1', 1, "
    "'{\"channel\": \"APP\"}', '2024-01-01 00:00:00+00:00', '2024-01-01 00:00:01+00:00', 1), "
    "('00000000-0000-4000-8000-000000000002', 'tier.changed', 'tier.changed:7', 1, '{}', "
    "'2024-01-02 00:00:00+00:00', NULL, 0)"
)
CHECK = (
    "SELECT CAST(id AS TEXT), kind, dedupe_key, member_id, status, attempts, "
    "next_attempt_at = created_at, sent_at IS NOT NULL FROM outbox ORDER BY id"
)


async def test_existing_events_move_onto_the_outbox(
    tmp_path: Path, database_url: str, orm: Any
) -> None:
    if BACKEND == "sqlite":
        path = tmp_path / "upgrade.sqlite3"
        url = f"sqlite://{path}"
        _migrate(url, tmp_path, "loyalty", "0005_audit_member_kind")
        with sqlite3.connect(path) as conn:
            conn.execute(EVENTS)
        _migrate(url, tmp_path)
        with sqlite3.connect(path) as conn:
            rows = [tuple(r) for r in conn.execute(CHECK).fetchall()]
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    else:
        url = database_url + "_outbox"
        admin = await asyncpg.connect(PG_ADMIN_URL.replace("postgres://", "postgresql://", 1))
        try:
            await admin.execute(f'CREATE DATABASE "{url.rsplit("/", 1)[1]}"')
        finally:
            await admin.close()
        try:
            _migrate(url, tmp_path, "loyalty", "0005_audit_member_kind")
            conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
            try:
                await conn.execute(EVENTS)
            finally:
                await conn.close()
            _migrate(url, tmp_path)
            conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
            try:
                rows = [tuple(r) for r in await conn.fetch(CHECK)]
                tables = {r[0] for r in await conn.fetch("SELECT tablename FROM pg_tables")}
            finally:
                await conn.close()
        finally:
            await drop_pg_database(url)

    assert [(r[0], r[4], r[5]) for r in rows] == [
        ("00000000-0000-4000-8000-000000000001", "SENT", 1),
        ("00000000-0000-4000-8000-000000000002", "PENDING", 0),
    ]
    assert [bool(r[6]) for r in rows] == [True, True]
    assert [bool(r[7]) for r in rows] == [True, False]
    assert "event" not in tables and "outbox" in tables
