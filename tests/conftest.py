"""Test fixtures: one database per session (both backends), Redis per session, clean per test.

``LOYALTY_TEST_BACKEND=postgres`` (default) uses PostgreSQL and Redis on 127.0.0.1;
``LOYALTY_TEST_BACKEND=sqlite`` uses the embedded default: a SQLite file and an embedded Redis.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from arq.connections import ArqRedis, RedisSettings, create_pool
from pydantic import SecretStr
from tortoise.context import TortoiseContext

from loyalty import clock, db, redis_embedded
from loyalty.app import Resources, create_app
from loyalty.auth.principal import Principal, Role
from loyalty.auth.tokens import issue_access_token
from loyalty.jobs import QUEUE_NAME
from loyalty.settings import Settings

BACKEND = os.environ.get("LOYALTY_TEST_BACKEND", "postgres")
PG_ADMIN_URL = os.environ.get("LOYALTY_TEST_PG", "postgres://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("LOYALTY_TEST_REDIS", "redis://127.0.0.1:6379")
TEST_SECRET = "test-secret-" + "x" * 40


def pytest_report_header() -> str:
    return f"loyalty backend: {BACKEND}"


@pytest.fixture(scope="session")
def backend() -> str:
    return BACKEND


@pytest.fixture(scope="session")
def tmp_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("loyalty")


@pytest.fixture(scope="session")
def database_url(tmp_root: Path) -> str:
    if BACKEND == "sqlite":
        return f"sqlite://{tmp_root / 'test.sqlite3'}"
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/loyalty_test_{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def redis_target(tmp_root: Path) -> Iterator[redis_embedded.RedisTarget]:
    if BACKEND == "sqlite":
        yield redis_embedded.start(tmp_root / "redis")
        redis_embedded.stop(tmp_root / "redis")
        return
    index = int(os.environ.get("LOYALTY_TEST_REDIS_DB") or random.randint(1, 15))
    yield redis_embedded.RedisTarget(url=f"{REDIS_URL}/{index}")


@pytest.fixture(scope="session")
def settings(
    database_url: str, redis_target: redis_embedded.RedisTarget, tmp_root: Path
) -> Settings:
    return Settings(
        env="test",
        database_url=database_url,
        redis_url=redis_target.url,
        data_dir=tmp_root / "var",
        jwt_secret=SecretStr(TEST_SECRET),
        worker_in_process=False,
        rate_limit_per_minute=100_000,
        anonymous_rate_limit_per_minute=100_000,
    )


@pytest.fixture(scope="session")
def migrated_database_url(database_url: str) -> str:
    """The session's database, created and migrated once by `loyalty migrate` in a
    subprocess (a second Tortoise initialisation in this process would rebind the models)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_")}
    env["LOYALTY_DATABASE_URL"] = database_url
    migrated = subprocess.run(
        [str(Path(sys.executable).with_name("loyalty")), "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    return database_url


@pytest_asyncio.fixture(scope="session")
async def orm(migrated_database_url: str) -> AsyncIterator[TortoiseContext]:
    """The session's ORM context on the migrated database, dropped at the end."""
    database_url = migrated_database_url
    config = db.tortoise_config(database_url)
    ctx = TortoiseContext()
    async with ctx:
        await ctx.init(config=config, _enable_global_fallback=True)
        yield ctx
        await ctx.close_connections()
    if BACKEND == "postgres":
        await drop_pg_database(database_url)


async def drop_pg_database(url: str) -> None:
    import asyncpg

    _base, name = url.rsplit("/", 1)
    conn = await asyncpg.connect(PG_ADMIN_URL.replace("postgres://", "postgresql://", 1))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest_asyncio.fixture(scope="session")
async def redis(redis_target: redis_embedded.RedisTarget) -> AsyncIterator[ArqRedis]:
    pool = await create_pool(redis_target.arq_settings(), default_queue_name=QUEUE_NAME)
    yield pool
    await pool.aclose()


@pytest_asyncio.fixture(autouse=True)
async def clean(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Truncate every table and flush Redis before each test that uses them."""
    if "orm" in request.fixturenames:
        from tortoise.contrib.test import truncate_all_models

        request.getfixturevalue("orm")
        await truncate_all_models()
    if "redis" in request.fixturenames:
        redis: ArqRedis = request.getfixturevalue("redis")
        await redis.flushdb()
    yield


@pytest_asyncio.fixture
async def app(orm: TortoiseContext, redis: ArqRedis, settings: Settings) -> AsyncIterator[Any]:
    application = create_app(settings, resources=Resources(redis=redis))
    async with application.router.lifespan_context(application):
        yield application


@pytest_asyncio.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


def token_for(settings: Settings, role: Role, **kwargs: Any) -> str:
    return issue_access_token(
        settings, Principal(role=role, subject=f"test-{role.value}", **kwargs)
    )


@pytest.fixture
def admin_token(settings: Settings) -> str:
    return token_for(settings, Role.ADMIN, scopes=frozenset({"pii"}))


@pytest.fixture
def staff_token(settings: Settings) -> str:
    return token_for(settings, Role.STAFF, scopes=frozenset({"pii"}))


@pytest.fixture
def service_token(settings: Settings) -> str:
    return token_for(settings, Role.SERVICE, channel="POS", store_id="S001")


class GraphQLClient:
    """Posts GraphQL documents as a given token; returns the decoded body."""

    def __init__(self, http: httpx.AsyncClient, token: str | None) -> None:
        self.http = http
        self.token = token

    async def __call__(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        expect_errors: bool = False,
    ) -> dict[str, Any]:
        headers = {}
        bearer = token or self.token
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        body = response.json()
        if not expect_errors:
            assert "errors" not in body, body["errors"]
        return body


@pytest.fixture
def gql(client: httpx.AsyncClient, admin_token: str) -> GraphQLClient:
    """GraphQL as an admin unless ``token=`` says otherwise."""
    return GraphQLClient(client, admin_token)


@pytest.fixture
def worker(redis: ArqRedis, settings: Settings, orm: TortoiseContext) -> Any:
    """``await worker()`` drains the queue with a burst worker in this process."""
    from loyalty.worker.settings import build_worker

    async def run() -> int:
        instance = build_worker(
            redis, settings, burst=True, external_db=True, handle_signals=False, cron_jobs=False
        )
        # No close(): it would close the session's shared Redis pool.
        await instance.main()
        return instance.jobs_complete

    return run


@pytest.fixture
def sql_queries(monkeypatch: pytest.MonkeyPatch, orm: Any) -> Iterator[list[str]]:
    """Every SQL statement the default connection runs while the test is recording (to count
    the queries of a request)."""
    seen: list[str] = []
    client_class = type(db.connection())
    for name in ("execute_query", "execute_query_dict"):
        original = getattr(client_class, name)

        def recorder(original: Any = original) -> Any:
            async def run(self: Any, query: str, values: Any = None) -> Any:
                seen.append(query)
                return await original(self, query, values)

            return run

        monkeypatch.setattr(client_class, name, recorder())
    yield seen


@pytest.fixture(autouse=True)
def _business_zone() -> None:
    clock.configure("Asia/Shanghai")


__all__ = ["RedisSettings", "token_for"]
