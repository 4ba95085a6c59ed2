"""Transactions rolled back for a deadlock or a serialization failure run again, a bounded
number of times."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from tortoise.transactions import in_transaction

from loyalty import db
from loyalty.orders.models import Order
from loyalty.points.models import PointsAccount
from tests.conftest import BACKEND
from tests.factories.members import create_member
from tests.factories.orders import record_order
from tests.factories.points import create_rule


class _Rollback(Exception):
    """What a driver raises when the server rolled the transaction back."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(("sqlstate", "runs"), [("40P01", 3), ("40001", 3), ("23505", 1)])
async def test_only_deadlocks_and_serialization_failures_run_again(
    orm: Any, sqlstate: str, runs: int
) -> None:
    calls = 0

    @db.retry_conflicts
    async def service() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise RuntimeError("wrapped") from _Rollback(sqlstate)
        return "done"

    if runs == 1:
        with pytest.raises(RuntimeError):
            await service()
    else:
        assert await service() == "done"
    assert calls == runs


async def test_retries_stop_after_the_bound(orm: Any) -> None:
    calls = 0

    @db.retry_conflicts
    async def service() -> None:
        nonlocal calls
        calls += 1
        raise _Rollback("40P01")

    with pytest.raises(_Rollback):
        await service()
    assert calls == db.RETRY_ATTEMPTS


async def test_inside_a_callers_transaction_the_caller_retries(orm: Any) -> None:
    calls = 0

    @db.retry_conflicts
    async def service() -> None:
        nonlocal calls
        calls += 1
        raise _Rollback("40P01")

    with pytest.raises(_Rollback):
        async with in_transaction():
            await service()
    assert calls == 1


@pytest.mark.skipif(BACKEND != "postgres", reason="SQLite runs one transaction at a time")
async def test_an_order_that_loses_a_deadlock_is_recorded_on_its_second_run(
    orm: Any, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncpg

    retried: list[BaseException] = []
    rolled_back = asyncio.Event()
    is_retryable = db.is_retryable

    def counting(exc: BaseException) -> bool:
        found = is_retryable(exc)
        if found:
            retried.append(exc)
            rolled_back.set()
        return found

    monkeypatch.setattr(db, "is_retryable", counting)
    await create_rule(points_per_unit=1)
    member = await create_member()
    await record_order(member.id, external_id="first")  # the account row exists
    other = await asyncpg.connect(database_url.replace("postgres://", "postgresql://", 1))
    try:
        # Another client takes the account, waits for the order to take the member, then
        # asks for the member: a cycle. Its longer deadlock_timeout makes the order the one
        # PostgreSQL rolls back.
        await other.execute("SET deadlock_timeout = '20s'")
        tx = other.transaction()
        await tx.start()
        await other.execute(
            "SELECT 1 FROM points_account WHERE member_id = $1 FOR UPDATE", member.id
        )
        order = asyncio.create_task(record_order(member.id, external_id="second"))
        await _wait_for_lock_wait(other)
        blocked = asyncio.create_task(
            other.execute("SELECT 1 FROM member WHERE id = $1 FOR UPDATE", member.id)
        )
        await asyncio.wait_for(rolled_back.wait(), 10)
        await blocked
        await tx.rollback()
        result = await asyncio.wait_for(order, 10)
    finally:
        await other.close()

    assert len(retried) == 1 and getattr(retried[0], "sqlstate", None) == "40P01"
    assert not result.replayed
    assert await Order.filter(member_id=member.id).count() == 2
    assert (await PointsAccount.get(member_id=member.id)).balance == 200


async def _wait_for_lock_wait(conn: Any) -> None:
    """Until some other session waits for a lock."""
    for _ in range(200):
        waiting = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND pid <> pg_backend_pid() AND datname = current_database()"
        )
        if waiting:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the order never waited for the account")
