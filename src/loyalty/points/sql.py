"""Raw SQL for the conditional single-statement updates, on PostgreSQL and SQLite alike.

Queries are written with ``?`` placeholders; :func:`fetch` numbers them (``$1`` …) for
PostgreSQL. ``UPDATE … RETURNING`` works on both (SQLite ≥ 3.35), so a guarded update and its
row-count check are one round trip.
"""

from __future__ import annotations

from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient


def _numbered(query: str) -> str:
    parts = query.split("?")
    out = [parts[0]]
    for i, part in enumerate(parts[1:], start=1):
        out.append(f"${i}{part}")
    return "".join(out)


def dialect(conn: BaseDBAsyncClient) -> str:
    return str(conn.capabilities.dialect)


async def fetch(conn: BaseDBAsyncClient, query: str, *params: Any) -> list[dict[str, Any]]:
    """Run ``query`` (``?`` placeholders) and return its rows as dicts."""
    if dialect(conn) == "postgres":
        query = _numbered(query)
    rows = await conn.execute_query_dict(query, list(params))
    return [dict(row) for row in rows]


async def execute(conn: BaseDBAsyncClient, query: str, *params: Any) -> int:
    """Run a statement; returns the affected row count."""
    if dialect(conn) == "postgres":
        query = _numbered(query)
    count, _rows = await conn.execute_query(query, list(params))
    return int(count)
