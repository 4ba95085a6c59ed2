"""Qualifying metrics in SQL, set-based, on PostgreSQL and SQLite alike.

Sources (one row per qualifying fact, ``member_id, at, v``):

- SPEND: orders' paid amount net of refunds, dated by the order (a refund reduces the window
  its order falls in, and never acts before review);
- ORDERS: orders not fully refunded (an order paid entirely with points still counts);
- POINTS: points earned (EARN lots) net of clawbacks (REVERSE), dated by the entry.

Windows end at the time of evaluation and include their first instant.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

from loyalty.tiers.models import Metric
from loyalty.tiers.rules import TierRule

SOURCES: dict[Metric, tuple[str, str, str, str]] = {
    # metric: (table, time column, value expression, extra condition)
    Metric.SPEND: ("customer_order", "occurred_at", "paid_amount - refunded_amount", ""),
    Metric.ORDERS: (
        "customer_order",
        "occurred_at",
        "CASE WHEN refunded_amount < paid_amount OR paid_amount = 0 THEN 1 ELSE 0 END",
        "",
    ),
    Metric.POINTS: ("points_entry", "created_at", "amount", "kind IN ('EARN', 'REVERSE')"),
}


class Sql:
    """Bind parameters in the connection's style: ``$n`` (PostgreSQL) or ``?n`` (SQLite)."""

    def __init__(self, connection: BaseDBAsyncClient) -> None:
        self.connection = connection
        self.postgres = str(connection.capabilities.dialect) == "postgres"
        self.params: list[Any] = []

    def bind(self, value: Any) -> str:
        self.params.append(value)
        return f"${len(self.params)}" if self.postgres else f"?{len(self.params)}"

    def bind_ts(self, value: datetime) -> str:
        """A timestamp parameter (UTC, so SQLite compares the stored text in order)."""
        placeholder = self.bind(value.astimezone(UTC))
        return f"CAST({placeholder} AS TIMESTAMPTZ)" if self.postgres else placeholder

    def bind_list(self, values: Iterable[Any]) -> str:
        return ", ".join(self.bind(v) for v in values)

    async def rows(self, sql: str) -> list[dict[str, Any]]:
        return list(await self.connection.execute_query_dict(sql, self.params))


def connection_or_default(connection: BaseDBAsyncClient | None) -> BaseDBAsyncClient:
    return connection if connection is not None else connections.get("default")


@dataclass(frozen=True)
class Measure:
    """A metric summed from ``start``: the unit of work shared by rules measured alike."""

    metric: Metric
    start: datetime


def measures_of(rules: Sequence[TierRule], at: datetime) -> list[Measure]:
    seen: dict[Measure, None] = {}
    for rule in rules:
        seen.setdefault(Measure(rule.metric, rule.window_start(at)), None)
    return list(seen)


Members = Sequence[int] | str | None  # ids, a sub-select of ids, or everyone


def source_sql(q: Sql, metric: Metric, start: datetime, member_ids: Members) -> str:
    table, at_column, value, condition = SOURCES[metric]
    where = ["member_id IS NOT NULL", f"{at_column} >= {q.bind_ts(start)}"]
    if condition:
        where.append(condition)
    if isinstance(member_ids, str):
        where.append(f"member_id IN ({member_ids})")
    elif member_ids is not None:
        where.append(f"member_id IN ({q.bind_list(member_ids)})")
    return (
        f"SELECT member_id, {at_column} AS at, {value} AS v, '{metric.value}' AS src "
        f"FROM {table} WHERE {' AND '.join(where)}"
    )


def values_cte(q: Sql, measures: Sequence[Measure], member_ids: Members) -> str:
    """``SELECT member_id, m0, m1, …``: each measure's value per member with any activity."""
    earliest: dict[Metric, datetime] = {}
    for m in measures:
        earliest[m.metric] = min(m.start, earliest.get(m.metric, m.start))
    sources = " UNION ALL ".join(
        source_sql(q, metric, start, member_ids) for metric, start in earliest.items()
    )
    columns = ", ".join(
        f"CAST(SUM(CASE WHEN e.src = '{m.metric.value}' AND e.at >= {q.bind_ts(m.start)} "
        f"THEN e.v ELSE 0 END) AS BIGINT) AS m{i}"
        for i, m in enumerate(measures)
    )
    return f"SELECT e.member_id, {columns} FROM ({sources}) e GROUP BY e.member_id"


def qualifying_sql(
    q: Sql, ladder: Sequence[TierRule], measures: Sequence[Measure], at: datetime, alias: str
) -> str:
    """Ordinal (0 = entry) of the highest rung whose condition holds, from ``alias.m<i>``."""
    index = {m: i for i, m in enumerate(measures)}
    whens = []
    for ordinal in range(len(ladder) - 1, 0, -1):
        rule = ladder[ordinal]
        column = f"m{index[Measure(rule.metric, rule.window_start(at))]}"
        threshold = q.bind(rule.threshold)
        whens.append(f"WHEN COALESCE({alias}.{column}, 0) >= {threshold} THEN {ordinal}")
    if not whens:
        return "0"
    return f"CASE {' '.join(whens)} ELSE 0 END"


async def measure(
    *,
    ladder: Sequence[TierRule],
    member_ids: Sequence[int],
    at: datetime,
    connection: BaseDBAsyncClient | None = None,
) -> dict[int, dict[Measure, int]]:
    """Every measure the ladder needs, for a few members (missing members measure 0)."""
    result: dict[int, dict[Measure, int]] = {
        mid: dict.fromkeys(measures_of(ladder, at), 0) for mid in member_ids
    }
    if not member_ids or not ladder:
        return result
    q = Sql(connection_or_default(connection))
    measures = measures_of(ladder, at)
    for row in await q.rows(values_cte(q, measures, list(member_ids))):
        for i, m in enumerate(measures):
            result[int(row["member_id"])][m] = int(row[f"m{i}"] or 0)
    return result


def qualifying_ordinal(ladder: Sequence[TierRule], values: dict[Measure, int], at: datetime) -> int:
    """The ordinal the values qualify for (the same rule as :func:`qualifying_sql`)."""
    for ordinal in range(len(ladder) - 1, 0, -1):
        rule = ladder[ordinal]
        if values.get(Measure(rule.metric, rule.window_start(at)), 0) >= rule.threshold:
            return ordinal
    return 0


async def sums_since(
    *,
    metric: Metric,
    bounds: dict[int, datetime],
    connection: BaseDBAsyncClient | None = None,
    chunk: int = 400,
) -> dict[int, int]:
    """Per member, ``metric`` summed from that member's own start (one statement per chunk)."""
    out = dict.fromkeys(bounds, 0)
    items = list(bounds.items())
    for offset in range(0, len(items), chunk):
        part = items[offset : offset + chunk]
        q = Sql(connection_or_default(connection))
        earliest = min(start for _, start in part)
        source = source_sql(q, metric, earliest, [mid for mid, _ in part])
        case = " ".join(f"WHEN {q.bind(mid)} THEN {q.bind_ts(start)}" for mid, start in part)
        sql = (
            f"SELECT e.member_id, CAST(SUM(e.v) AS BIGINT) AS v FROM ({source}) e "
            f"WHERE e.at >= CASE e.member_id {case} END GROUP BY e.member_id"
        )
        for row in await q.rows(sql):
            out[int(row["member_id"])] = int(row["v"] or 0)
    return out
