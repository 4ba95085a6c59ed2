"""The outbox delivers each row once, whoever races for it, retries with backoff until DEAD,
returns expired claims and pages through any backlog (real Redis stream, both backends)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from arq.connections import ArqRedis

from loyalty import clock
from loyalty.events import service as events
from loyalty.events.tasks import events_reconcile
from loyalty.outbox import senders
from loyalty.outbox import service as outbox
from loyalty.outbox.models import OutboxMessage, OutboxStatus
from loyalty.outbox.senders import Delivery

pytestmark = pytest.mark.usefixtures("orm")

POLICY = outbox.Policy(
    max_attempts=3, backoff_seconds=10, backoff_max_seconds=1_000, lease_seconds=60
)
RACE_ROWS = 1_000


async def add_rows(count: int, *, kind: str = "member.tested") -> list[uuid.UUID]:
    now = clock.now()
    rows = [
        OutboxMessage(
            id=uuid.uuid4(),
            kind=kind,
            dedupe_key=f"{kind}:{i}",
            payload={"n": i},
            status=OutboxStatus.PENDING,
            next_attempt_at=now,
            created_at=now,
        )
        for i in range(count)
    ]
    await OutboxMessage.bulk_create(rows, batch_size=500)
    return [row.id for row in rows]


async def stream_counts(redis: ArqRedis) -> Counter[str]:
    entries = await redis.xrange(senders.STREAM)
    return Counter(fields[b"dedupe_key"].decode() for _id, fields in entries)


async def test_publishers_delivery_loops_and_the_reconciler_racing_deliver_each_row_once(
    redis: ArqRedis,
) -> None:
    ids = await add_rows(RACE_ROWS)

    async def loop() -> int:
        sent = 0
        while (report := await outbox.deliver(redis=redis, limit=25, policy=POLICY)).claimed:
            sent += report.sent
        return sent

    async def publisher(chunk: list[uuid.UUID]) -> int:
        return sum([await events.publish(event_id=i, redis=redis) for i in chunk])

    async def reconciler() -> int:
        return (await outbox.deliver_all_due(redis=redis, page_size=40, policy=POLICY)).sent

    results = await asyncio.gather(
        loop(), loop(), loop(), reconciler(), reconciler(), publisher(ids[::3]), publisher(ids)
    )

    counts = await stream_counts(redis)
    assert len(counts) == RACE_ROWS
    assert set(counts.values()) == {1}
    assert sum(results) == RACE_ROWS
    assert await OutboxMessage.filter(status=OutboxStatus.SENT).count() == RACE_ROWS
    assert await OutboxMessage.filter(attempts__gt=1).count() == 0


async def test_a_failing_sender_backs_off_then_the_row_is_dead_with_its_error(
    redis: ArqRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def receiver_down(delivery: Delivery, *, redis: Any) -> None:
        raise ConnectionError("receiver answered 500")

    monkeypatch.setitem(senders.SENDERS, "hook", receiver_down)
    with clock.frozen(clock.now()):
        row_id = await outbox.add(kind="hook.test", dedupe_key="hook:1", payload={"a": 1})
        waits = []
        for attempt in (1, 2):
            started = clock.now()
            report = await outbox.deliver(redis=redis, policy=POLICY)
            assert (report.claimed, report.failed) == (1, 1)
            row = await OutboxMessage.get(id=row_id)
            assert (row.status, row.attempts) == (OutboxStatus.FAILED, attempt)
            assert row.last_error == "ConnectionError: receiver answered 500"
            waits.append(row.next_attempt_at - started)
            # Not due before its next attempt.
            assert (await outbox.deliver(redis=redis, policy=POLICY)).claimed == 0
            clock.advance(row.next_attempt_at - started)
        assert timedelta(seconds=5) <= waits[0] <= timedelta(seconds=10)
        assert timedelta(seconds=10) <= waits[1] <= timedelta(seconds=20)

        report = await outbox.deliver(redis=redis, policy=POLICY)
        row = await OutboxMessage.get(id=row_id)
        assert report.dead == 1
        assert (row.status, row.attempts) == (OutboxStatus.DEAD, 3)
        assert row.last_error == "ConnectionError: receiver answered 500"
        clock.advance(timedelta(days=1))
        assert (await outbox.deliver(redis=redis, policy=POLICY)).claimed == 0

        monkeypatch.setitem(senders.SENDERS, "hook", senders.to_event_stream)
        assert await outbox.retry_dead(kind="member.other") == 0
        assert await outbox.retry_dead(kind="hook.test") == 1
        assert (await outbox.deliver(redis=redis, policy=POLICY)).sent == 1

    row = await OutboxMessage.get(id=row_id)
    assert (row.status, row.attempts, row.last_error) == (OutboxStatus.SENT, 1, None)
    assert await stream_counts(redis) == {"hook:1": 1}


async def test_a_kind_without_a_sender_is_dead_at_once(redis: ArqRedis) -> None:
    row_id = await outbox.add(kind="nowhere.test", dedupe_key="nowhere:1", payload={})
    assert (await outbox.deliver(redis=redis, policy=POLICY)).dead == 1
    row = await OutboxMessage.get(id=row_id)
    assert row.status == OutboxStatus.DEAD
    assert row.last_error == "Undeliverable: no sender for kind 'nowhere.test'"


async def test_a_claim_whose_lease_expired_is_reclaimed_and_delivered_once(
    redis: ArqRedis,
) -> None:
    with clock.frozen(clock.now()):
        (row_id,) = await add_rows(1)
        # A sender claims the row and dies before it finishes.
        assert len(await outbox.claim(limit=10, token="gone", policy=POLICY)) == 1
        assert (await outbox.deliver(redis=redis, policy=POLICY)).claimed == 0
        assert await events.publish(event_id=row_id, redis=redis) is False
        clock.advance(timedelta(seconds=59))
        assert await events_reconcile({"redis": redis}) == 0

        clock.advance(timedelta(seconds=2))
        assert await events_reconcile({"redis": redis}) == 1
        assert await events_reconcile({"redis": redis}) == 0

    row = await OutboxMessage.get(id=row_id)
    assert (row.status, row.attempts, row.claimed_by) == (OutboxStatus.SENT, 2, None)
    assert set((await stream_counts(redis)).values()) == {1}


async def test_a_claim_that_keeps_expiring_ends_dead(redis: ArqRedis) -> None:
    with clock.frozen(clock.now()):
        (row_id,) = await add_rows(1)
        for _ in range(POLICY.max_attempts):
            assert len(await outbox.claim(limit=1, token="crashing", policy=POLICY)) == 1
            clock.advance(timedelta(seconds=61))
            await outbox.reclaim_expired(policy=POLICY)
    row = await OutboxMessage.get(id=row_id)
    assert (row.status, row.last_error) == (OutboxStatus.DEAD, "claim expired before it finished")


async def test_the_reconciler_delivers_every_due_row_page_by_page(redis: ArqRedis) -> None:
    await add_rows(1_005)

    assert await events_reconcile({"redis": redis}, page_size=100) == 1_005

    assert await OutboxMessage.filter(status=OutboxStatus.SENT).count() == 1_005
    assert len(await stream_counts(redis)) == 1_005


async def test_stats_count_rows_by_status_and_kind_with_the_oldest_pending_age(
    redis: ArqRedis,
) -> None:
    assert await outbox.stats() == outbox.OutboxStats(counts={}, oldest_pending_age=None)
    with clock.frozen(clock.now()):
        await add_rows(2, kind="member.a")
        clock.advance(timedelta(minutes=5))
        await add_rows(3, kind="points.b")
        await outbox.add(kind="nowhere.c", dedupe_key="c", payload={})
        assert (await outbox.deliver(redis=redis, limit=100, policy=POLICY)).claimed == 6
        await add_rows(1, kind="tier.d")
        clock.advance(timedelta(minutes=1))
        result = await outbox.stats()

    assert result.counts == {
        ("SENT", "member.a"): 2,
        ("SENT", "points.b"): 3,
        ("DEAD", "nowhere.c"): 1,
        ("PENDING", "tier.d"): 1,
    }
    assert result.by_status() == {"SENT": 5, "DEAD": 1, "PENDING": 1}
    assert result.oldest_pending_age == timedelta(minutes=1)
