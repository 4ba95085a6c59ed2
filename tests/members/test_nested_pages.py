"""member.orders and member.pointsHistory on a list of members: batched, same pages as one by one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from strawberry.relay import from_base64

from loyalty import clock, db
from loyalty.graphql.pagination import encode_cursor
from loyalty.orders import service as orders
from loyalty.points import service as points
from loyalty.points.service import queries as points_queries
from tests.factories.members import create_member
from tests.factories.orders import line, record_order
from tests.factories.points import grant_points

PAGE = """
query($first: Int!) { members(first: $first) { edges { node {
  id
  orders(first: 3) {
    edges { cursor node { externalId lines { lineNo sku } } }
    hasNextPage endCursor
  }
  pointsHistory(first: 3) {
    edges { cursor node { entryId kind amount lots { lotEntryId amount } } }
    pageInfo { hasNextPage endCursor }
  }
} } } }
"""

NEXT_ORDERS = """
query($id: ID!, $after: String) { member(id: $id) {
  orders(first: 3, after: $after) { edges { node { externalId } } hasNextPage }
} }
"""

BASE = datetime(2024, 6, 1, 2, tzinfo=UTC)


async def members_with_history(n: int) -> None:
    """``n`` members; most have four orders of two lines and four ledger entries (two
    redemptions drawing on two lots); every fifth has nothing. Odd members' orders happened
    in another order than they were recorded; even members' orders all share one instant."""
    for i in range(n):
        member = await create_member(email=None)
        if i % 5 == 4:
            continue
        for hours in (2, 0, 3, 1):
            await record_order(
                member.id,
                occurred_at=BASE - timedelta(hours=hours if i % 2 else 0),
                lines=[line("TEA", 2, 4_500), line("CUP", 1, 1_000)],
            )
        # Expires before the default expiry of the 70 (end of the month, a year on).
        await grant_points(member.id, 50, expires_at=clock.now() + timedelta(days=300))
        await grant_points(member.id, 70)
        await points.redeem(member_id=member.id, amount=60, idempotency_key="spend-1")
        await points.redeem(member_id=member.id, amount=10, idempotency_key="spend-2")


async def expected_orders(member_id: int) -> dict[str, Any]:
    rows, has_next = await orders.member_page(member_id=member_id, first=3)
    cursors = [encode_cursor(row.occurred_at.isoformat(), row.id) for row in rows]
    return {
        "externalIds": [row.external_id for row in rows],
        "cursors": cursors,
        "hasNextPage": has_next,
        "endCursor": cursors[-1] if cursors else None,
    }


async def expected_history(member_id: int) -> dict[str, Any]:
    rows, has_next = await points_queries.history_page(member_id=member_id, first=3)
    cursors = [encode_cursor(row.id) for row in rows]
    return {
        "entryIds": [row.id for row in rows],
        "cursors": cursors,
        "hasNextPage": has_next,
        "endCursor": cursors[-1] if cursors else None,
    }


def read_orders(node: dict[str, Any]) -> dict[str, Any]:
    page = node["orders"]
    return {
        "externalIds": [e["node"]["externalId"] for e in page["edges"]],
        "cursors": [e["cursor"] for e in page["edges"]],
        "hasNextPage": page["hasNextPage"],
        "endCursor": page["endCursor"],
    }


def read_history(node: dict[str, Any]) -> dict[str, Any]:
    page = node["pointsHistory"]
    return {
        "entryIds": [e["node"]["entryId"] for e in page["edges"]],
        "cursors": [e["cursor"] for e in page["edges"]],
        "hasNextPage": page["pageInfo"]["hasNextPage"],
        "endCursor": page["pageInfo"]["endCursor"],
    }


async def test_a_page_of_members_with_orders_and_points_history_costs_constant_queries(
    gql: Any, sql_queries: list[str]
) -> None:
    await members_with_history(5)
    sql_queries.clear()
    small = await gql(PAGE, {"first": 5})
    queries_for_5 = len(sql_queries)

    await members_with_history(35)
    sql_queries.clear()
    large = await gql(PAGE, {"first": 40})
    queries_for_40 = len(sql_queries)

    nodes = [e["node"] for e in large["data"]["members"]["edges"]]
    assert len(small["data"]["members"]["edges"]) == 5
    assert len(nodes) == 40
    assert queries_for_40 == queries_for_5
    # members, orders, order lines, history, allocations, the lots drawn on
    assert queries_for_40 == 6, sql_queries
    full = [n for n in nodes if n["orders"]["edges"]]
    assert len(full) == 32
    assert all(
        [line["sku"] for line in e["node"]["lines"]] == ["TEA", "CUP"]
        for n in full
        for e in n["orders"]["edges"]
    )
    assert all(
        [e["node"]["kind"] for e in n["pointsHistory"]["edges"]] == ["REDEEM", "REDEEM", "EARN"]
        for n in full
    )
    assert all(
        sorted(d["amount"] for d in n["pointsHistory"]["edges"][1]["node"]["lots"]) == [10, 50]
        for n in full
    )


@pytest.mark.parametrize("window_functions", [True, False], ids=["window", "sqlite<3.25"])
async def test_batched_pages_are_the_pages_a_single_member_gets(
    gql: Any, monkeypatch: pytest.MonkeyPatch, window_functions: bool
) -> None:
    # SQLite before 3.25 has no window functions: one query per member instead.
    monkeypatch.setattr(db, "SQLITE_WINDOW_FUNCTIONS", window_functions)
    await members_with_history(10)

    body = await gql(PAGE, {"first": 10})

    for edge in body["data"]["members"]["edges"]:
        node = edge["node"]
        member_id = int(from_base64(node["id"])[1])
        assert read_orders(node) == await expected_orders(member_id)
        assert read_history(node) == await expected_history(member_id)


async def test_the_end_cursor_of_a_batched_page_continues_the_members_orders(gql: Any) -> None:
    await members_with_history(2)
    body = await gql(PAGE, {"first": 2})
    node = next(e["node"] for e in body["data"]["members"]["edges"] if e["node"]["orders"]["edges"])
    first_page = read_orders(node)

    rest = await gql(NEXT_ORDERS, {"id": node["id"], "after": first_page["endCursor"]})

    page = rest["data"]["member"]["orders"]
    assert len(first_page["externalIds"]) == 3 and first_page["hasNextPage"] is True
    assert len(page["edges"]) == 1 and page["hasNextPage"] is False
    seen = first_page["externalIds"] + [page["edges"][0]["node"]["externalId"]]
    assert len(set(seen)) == 4
