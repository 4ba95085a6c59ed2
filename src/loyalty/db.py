"""Database wiring: the Tortoise config, migrations, and small helpers shared by services.

:func:`retry_conflicts` runs a service's transaction again after a deadlock or a
serialization failure; the row lock order that keeps deadlocks out of the ledger is in
:mod:`loyalty.points.service.ledger`.
"""

from __future__ import annotations

import asyncio
import functools
import random
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import structlog
from pypika_tortoise import Order, Table
from pypika_tortoise.analytics import RowNumber
from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient, TransactionalDBClient
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.models import Model

from loyalty.settings import Settings

APP_LABEL = "loyalty"

M = TypeVar("M", bound=Model)
P = ParamSpec("P")
R = TypeVar("R")

log = structlog.get_logger(__name__)

# Window functions arrived in SQLite 3.25 (PostgreSQL has always had them).
SQLITE_WINDOW_FUNCTIONS = sqlite3.sqlite_version_info >= (3, 25)

# Every module holding Tortoise models. A new domain adds its ``models`` module here.
MODEL_MODULES: list[str] = [
    "loyalty.members.models",
    "loyalty.outbox.models",
    "loyalty.events.models",
    "loyalty.audit.models",
    "loyalty.points.models",
    "loyalty.orders.models",
    "loyalty.auth.models",
    "loyalty.tiers.models",
    "loyalty.benefits.models",
    "loyalty.worker.models",
    "loyalty.webhooks.models",
]


def tortoise_config(
    database_url: str, *, modules: list[str] | None = None, pool_size: int = 10
) -> dict[str, Any]:
    """Tortoise config dict for ``database_url`` (SQLite gets WAL and a busy timeout)."""
    if database_url.startswith("sqlite"):
        path = database_url.split("://", 1)[1]
        if path and path != ":memory:":
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        connection: dict[str, Any] = {
            "engine": "tortoise.backends.sqlite",
            "credentials": {
                "file_path": path,
                "journal_mode": "WAL",
                "busy_timeout": 10_000,
                "foreign_keys": "ON",
                "synchronous": "NORMAL",
            },
        }
    else:
        connection = expand_db_url(database_url)
        credentials = connection["credentials"]
        credentials.setdefault("minsize", 2)
        credentials.setdefault("maxsize", pool_size)
        # asyncpg resets every connection it takes back (a RESET ALL round trip per
        # statement, as Tortoise borrows a connection per statement). We keep no session
        # state, so only an open transaction needs undoing.
        credentials["reset"] = _rollback_if_in_transaction
    return {
        "connections": {"default": connection},
        "apps": {
            APP_LABEL: {
                "models": modules or MODEL_MODULES,
                "default_connection": "default",
                "migrations": "loyalty.migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def config_from_settings(settings: Settings) -> dict[str, Any]:
    return tortoise_config(settings.database_url, pool_size=settings.database_pool_size)


async def _rollback_if_in_transaction(connection: Any) -> None:
    if connection.is_in_transaction():
        await connection.execute("ROLLBACK")


async def migrate(database_url: str, *, create_db: bool = False) -> None:
    """Apply every pending migration to ``database_url`` (idempotent).

    With ``create_db`` a missing PostgreSQL database is created first.
    """
    from tortoise.context import TortoiseContext
    from tortoise.migrations.api import migrate as migrate_api

    if create_db and not database_url.startswith("sqlite"):
        await ensure_postgres_database(database_url)
    config = tortoise_config(database_url)
    async with TortoiseContext() as ctx:
        await ctx.init(config=config)
        await migrate_api(config=config)
        await ctx.close_connections()


async def ensure_postgres_database(database_url: str) -> bool:
    """Create the database named in ``database_url`` unless it exists; True if created."""
    import asyncpg

    dsn = database_url.replace("postgres://", "postgresql://", 1)
    try:
        conn = await asyncpg.connect(dsn)
    except asyncpg.InvalidCatalogNameError:
        base, _, name = dsn.partition("?")[0].rpartition("/")
        admin = await asyncpg.connect(f"{base}/postgres")
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        except asyncpg.DuplicateDatabaseError:
            return False
        finally:
            await admin.close()
        return True
    await conn.close()
    return False


def connection() -> BaseDBAsyncClient:
    """The default connection of the active Tortoise context."""
    return connections.get("default")


def dialect() -> str:
    """``postgres`` or ``sqlite``."""
    return str(connection().capabilities.dialect)


async def ping() -> None:
    """A ``SELECT 1`` round trip; raises when the database is unreachable."""
    await connection().execute_query("SELECT 1")


# PostgreSQL rolls a transaction back with these when running it again may succeed:
# serialization_failure and deadlock_detected.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})
RETRY_ATTEMPTS = 5


def retryable_sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a deadlock or a serialization failure in ``exc`` or what it wraps."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        state = getattr(current, "sqlstate", None)
        if state in RETRYABLE_SQLSTATES:
            return str(state)
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def is_retryable(exc: BaseException) -> bool:
    """Whether running the transaction that raised ``exc`` again may succeed."""
    return retryable_sqlstate(exc) is not None


def retry_conflicts(func: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Run ``func`` (a service that owns its transaction) again when the database rolled its
    transaction back for a deadlock or a serialization failure: at most
    :data:`RETRY_ATTEMPTS` runs in all, with a short random pause between them; the last
    failure is raised. Nothing of a rolled-back run is kept, so running the service again
    (validation, replay check, transaction) is safe. Called inside a caller's transaction it
    does not retry: that transaction is lost too, and its owner retries.
    """

    @functools.wraps(func)
    async def run(*args: P.args, **kwargs: P.kwargs) -> R:
        attempt = 1
        while True:
            try:
                return await func(*args, **kwargs)
            except Exception as exc:
                if attempt >= RETRY_ATTEMPTS or not is_retryable(exc) or _in_transaction():
                    raise
                log.warning(
                    "db.transaction.retry",
                    service=func.__qualname__,
                    attempt=attempt,
                    sqlstate=retryable_sqlstate(exc),
                )
            await asyncio.sleep(random.uniform(0.005, 0.02) * attempt)
            attempt += 1

    return run


def _in_transaction() -> bool:
    return isinstance(connection(), TransactionalDBClient)


async def first_rows_per_key(
    model: type[M], *, key: str, keys: Sequence[int], order_by: Sequence[str], limit: int
) -> dict[int, list[M]]:
    """The first ``limit`` rows of ``model`` for each value of the column ``key`` in ``keys``,
    sorted within each key by ``order_by`` (field names, ``-name`` for descending).

    One query whatever the number of keys: ``ROW_NUMBER() OVER (PARTITION BY key ORDER BY …)``
    filtered to ``<= limit``. Keys without rows are absent from the result.
    """
    if not keys:
        return {}
    conn = model._meta.db
    if conn.capabilities.dialect == "sqlite" and not SQLITE_WINDOW_FUNCTIONS:
        found = {
            k: await model.filter(**{key: k}).order_by(*order_by).limit(limit)
            for k in dict.fromkeys(keys)
        }
        return {k: rows for k, rows in found.items() if rows}
    columns = model._meta.fields_db_projection
    table = Table(model._meta.db_table)
    rank = RowNumber().over(table.field(columns.get(key, key)))
    for name in order_by:
        field = name.lstrip("-")
        rank = rank.orderby(
            table.field(columns.get(field, field)),
            order=Order.desc if name.startswith("-") else Order.asc,
        )
    ranked = (
        conn.query_class.from_(table)
        .select(table.star, rank.as_("row_rank"))
        .where(table.field(columns.get(key, key)).isin([int(k) for k in dict.fromkeys(keys)]))
    )
    query = (
        conn.query_class.from_(ranked)
        .select("*")
        .where(ranked.row_rank <= limit)
        .orderby(ranked.field(columns.get(key, key)))
        .orderby(ranked.row_rank)
    )
    sql, values = query.get_parameterized_sql()
    rows: list[M] = await conn.executor_class(model=model, db=conn).execute_select(sql, values)
    grouped: dict[int, list[M]] = {}
    for row in rows:
        grouped.setdefault(getattr(row, key), []).append(row)
    return grouped


def __getattr__(name: str) -> Any:
    # ``tortoise -c loyalty.db.TORTOISE_ORM makemigrations`` reads the config from here.
    if name == "TORTOISE_ORM":
        from loyalty.settings import get_settings

        return config_from_settings(get_settings())
    raise AttributeError(name)
