"""Birthday selection on PostgreSQL: indexed (month, day) look-up against a sequential scan.

Ceiling: the same statement with index scans disabled, measured in the same run.
Goal (DESIGN §5): at 1M members the indexed selection takes ≤ 5 ms.
"""

from __future__ import annotations

import statistics
import time
import uuid
from dataclasses import dataclass

import asyncpg

from loyalty import db

SELECT = "SELECT id FROM member WHERE birth_month = $1 AND birth_day = $2 AND status = 'ACTIVE'"


@dataclass(frozen=True)
class BirthdayResult:
    members: int
    indexed_ms: float
    seqscan_ms: float

    @property
    def ratio(self) -> float:
        return self.indexed_ms / self.seqscan_ms if self.seqscan_ms else 0.0


async def run(admin_url: str, *, members: int, repeats: int = 30) -> BirthdayResult:
    name = f"loyalty_bench_{uuid.uuid4().hex[:8]}"
    base = admin_url.rsplit("/", 1)[0]
    url = f"{base}/{name}"
    await db.migrate(url, create_db=True)
    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        await conn.execute(
            """
            INSERT INTO member (display_name, phone, birth_date, birth_month, birth_day, gender,
                                registered_channel, registered_at, status, lifecycle_stage, tags,
                                total_spend, order_count, created_at, updated_at)
            SELECT 'm' || g, NULL, d,
                   EXTRACT(MONTH FROM d)::smallint, EXTRACT(DAY FROM d)::smallint,
                   'UNDISCLOSED', 'APP', now(), 'ACTIVE', 'NEW', '[]', 0, 0, now(), now()
            FROM generate_series(1, $1) AS g,
                 LATERAL (
                     SELECT DATE '1960-01-01' + ((g::bigint * 7919) % 16000)::int AS d
                 ) AS birth
            """,
            members,
        )
        await conn.execute("ANALYZE member")
        indexed = await _time(conn, repeats)
        await conn.execute("SET enable_indexscan = off; SET enable_bitmapscan = off")
        # A new statement text: asyncpg's cached plan for SELECT would keep the index.
        seqscan = await _time(conn, max(3, repeats // 5), "/* seqscan */ " + SELECT)
    finally:
        await conn.close()
        admin = await asyncpg.connect(admin_url.replace("postgres://", "postgresql://", 1))
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    return BirthdayResult(members=members, indexed_ms=indexed, seqscan_ms=seqscan)


async def _time(conn: asyncpg.Connection, repeats: int, sql: str = SELECT) -> float:
    samples = []
    for i in range(repeats):
        month, day = 1 + i % 12, 1 + (i * 7) % 28
        started = time.perf_counter()
        await conn.fetch(sql, month, day)
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)
