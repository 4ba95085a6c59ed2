"""Database wiring: the Tortoise config, migrations, and small helpers shared by services."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tortoise import Tortoise, connections
from tortoise.backends.base.client import BaseDBAsyncClient

from loyalty.settings import Settings

APP_LABEL = "loyalty"

# Every module holding Tortoise models. A new domain adds its ``models`` module here.
MODEL_MODULES: list[str] = [
    "loyalty.members.models",
    "loyalty.events.models",
    "loyalty.audit.models",
    "loyalty.points.models",
    "loyalty.orders.models",
    "loyalty.auth.models",
    "loyalty.tiers.models",
    "loyalty.benefits.models",
]


def tortoise_config(database_url: str, *, modules: list[str] | None = None) -> dict[str, Any]:
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
        connection = database_url  # type: ignore[assignment]
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
    return tortoise_config(settings.database_url)


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


def is_initialised() -> bool:
    return bool(Tortoise.apps)


def __getattr__(name: str) -> Any:
    # ``tortoise -c loyalty.db.TORTOISE_ORM makemigrations`` reads the config from here.
    if name == "TORTOISE_ORM":
        from loyalty.settings import get_settings

        return config_from_settings(get_settings())
    raise AttributeError(name)
