"""Birthday selection on PostgreSQL: the product's own selection against the bare statement.

Candidate: :func:`loyalty.members.service.birthday_member_ids`, the selection the birthday
campaign reads (Tortoise query building, its pool, Feb 29 births on Feb 28 in common years).
Ceiling: the same selection as one hand-written SQL statement on a plain asyncpg connection,
measured in the same run. Both must select the same members on every day timed.

Goals (DESIGN §5): at 1M members the product's selection takes ≤ 5 ms and ≤ 1.5× the bare
statement.
"""

from __future__ import annotations

import statistics
import time
import uuid
from dataclasses import dataclass
from datetime import date

import asyncpg
from tortoise.context import TortoiseContext

from loyalty import db
from loyalty.members import service

SELECT = (
    "SELECT id FROM member WHERE birth_month = $1 AND birth_day = ANY($2::smallint[]) "
    "AND status = 'ACTIVE' AND id > $3 ORDER BY id LIMIT $4"
)
# One call selects a whole day: about 2,700 members at 1M.
LIMIT = 10_000
# Feb 28 of a common year first: it also selects the Feb 29 births.
FIRST_DAY = date(2025, 2, 28)


@dataclass(frozen=True)
class BirthdayResult:
    members: int
    days: int  # days timed; on each, both selected the same members
    selected: int  # members selected over those days
    product_ms: float
    bare_sql_ms: float

    @property
    def ratio(self) -> float:
        return self.product_ms / self.bare_sql_ms if self.bare_sql_ms else 0.0


def days_to_time(repeats: int) -> list[date]:
    days = [FIRST_DAY]
    for i in range(1, repeats):
        days.append(date(2025, 1 + i % 12, 1 + (i * 11) % 28))
    return days


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
        # This task's own ORM context (no global fallback: a test session may hold that one).
        async with TortoiseContext() as ctx:
            await ctx.init(config=db.tortoise_config(url))
            try:
                result = await _measure(conn, members, days_to_time(repeats))
            finally:
                await ctx.close_connections()
    finally:
        await conn.close()
        admin = await asyncpg.connect(admin_url.replace("postgres://", "postgresql://", 1))
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    return result


async def _product(day: date) -> list[int]:
    return await service.birthday_member_ids(on=day, limit=LIMIT)


async def _bare(conn: asyncpg.Connection, day: date) -> list[int]:
    rows = await conn.fetch(SELECT, day.month, service.birthday_days(day), 0, LIMIT)
    return [row["id"] for row in rows]


async def _measure(conn: asyncpg.Connection, members: int, days: list[date]) -> BirthdayResult:
    selected = 0
    for day in days:  # also warms both paths up
        product, bare = await _product(day), await _bare(conn, day)
        if product != bare:
            raise AssertionError(f"{day}: the product selected {len(product)}, SQL {len(bare)}")
        selected += len(product)
    product_ms, bare_ms = [], []
    for day in days:
        started = time.perf_counter()
        await _product(day)
        product_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        await _bare(conn, day)
        bare_ms.append((time.perf_counter() - started) * 1000)
    return BirthdayResult(
        members=members,
        days=len(days),
        selected=selected,
        product_ms=statistics.median(product_ms),
        bare_sql_ms=statistics.median(bare_ms),
    )
