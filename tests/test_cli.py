"""The command line as an operator meets it: start-up refusals and installing the program."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import BACKEND, PG_ADMIN_URL, drop_pg_database

LOYALTY = str(Path(sys.executable).with_name("loyalty"))
SHORT_SECRET = "abc123456789"
STRONG_SECRET = "s3cret-" + "q" * 40 + "456789"


def clean_env(**variables: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_")}
    env.update(variables)
    return env


def loyalty(*args: str, cwd: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LOYALTY, *args],
        cwd=cwd,
        env=clean_env(**variables),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("command", ["serve", "worker"])
@pytest.mark.parametrize(
    ("variables", "reason"),
    [
        (
            {"LOYALTY_ENV": "prod"},
            "LOYALTY_JWT_SECRET must be set in prod (the dev default is refused)",
        ),
        (
            {"LOYALTY_ENV": "prod", "LOYALTY_JWT_SECRET": SHORT_SECRET},
            "LOYALTY_JWT_SECRET must be at least 32 characters in prod",
        ),
        (
            {"LOYALTY_ENV": "prod", "LOYALTY_JWT_SECRET": STRONG_SECRET},
            "LOYALTY_REDIS_URL must be set in prod (the embedded Redis is dev only)",
        ),
        (
            {"LOYALTY_PORT": "eighty", "LOYALTY_JWT_SECRET": STRONG_SECRET},
            "LOYALTY_PORT: Input should be a valid integer",
        ),
        (
            {"LOYALTY_ENV": "production", "LOYALTY_JWT_SECRET": STRONG_SECRET},
            "LOYALTY_ENV: Input should be 'dev', 'test' or 'prod'",
        ),
        (
            {"LOYALTY_JWT_PREVIOUS_KEYS": '{"k0": "' + SHORT_SECRET},
            "LOYALTY_JWT_PREVIOUS_KEYS: not valid JSON",
        ),
    ],
    ids=["dev-secret", "short-secret", "no-redis", "bad-port", "bad-env", "bad-json"],
)
def test_a_refused_configuration_is_one_line_naming_the_variable_and_no_secret(
    command: str, variables: dict[str, str], reason: str, tmp_path: Path
) -> None:
    result = loyalty(command, cwd=tmp_path, **variables)

    assert result.returncode == 78
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("loyalty: refusing to start: ")
    assert reason in lines[0]
    for secret in (SHORT_SECRET, STRONG_SECRET):
        assert secret[-6:] not in result.stderr  # not even pydantic's '...456789' excerpt
    assert "Traceback" not in result.stderr


@pytest.fixture
def fresh_database_url(tmp_path: Path) -> Iterator[str]:
    """A database of its own, set up by `loyalty migrate` alone (as the production recipe does)."""
    if BACKEND == "sqlite":
        url = f"sqlite://{tmp_path / 'fresh.sqlite3'}"
    else:
        url = f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/loyalty_cli_{uuid.uuid4().hex[:10]}"
    migrated = loyalty("migrate", cwd=tmp_path, LOYALTY_DATABASE_URL=url)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    yield url
    if BACKEND == "postgres":
        asyncio.run(drop_pg_database(url))


def count_rows(url: str, *tables: str) -> dict[str, int]:
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite://")) as conn:
            return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}

    async def query() -> dict[str, int]:
        import asyncpg

        conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
        try:
            return {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in tables}
        finally:
            await conn.close()

    return asyncio.run(query())


PROGRAM_TABLES = ("tier", "benefit", "tier_entitlement", "earning_rule", "member")


def test_migrate_alone_leaves_no_program_and_install_program_adds_the_default_once(
    fresh_database_url: str, tmp_path: Path
) -> None:
    assert count_rows(fresh_database_url, "tier", "earning_rule") == {
        "tier": 0,
        "earning_rule": 0,
    }

    first = loyalty("install-program", cwd=tmp_path, LOYALTY_DATABASE_URL=fresh_database_url)
    assert first.returncode == 0, first.stderr
    installed = count_rows(fresh_database_url, *PROGRAM_TABLES)
    assert installed["tier"] == 4  # 普通 / 银卡 / 金卡 / 钻石
    assert installed["earning_rule"] == 2  # 1 point per yuan, double on member day
    assert installed["benefit"] > 0 and installed["tier_entitlement"] > 0
    assert installed["member"] == 0  # the program only: no demo members
    assert first.stdout.strip() == (
        f"program installed: 4 tiers, {installed['benefit']} benefits, 2 earning rules"
    )

    again = loyalty("install-program", cwd=tmp_path, LOYALTY_DATABASE_URL=fresh_database_url)
    assert again.returncode == 0, again.stderr
    assert again.stdout == first.stdout
    assert count_rows(fresh_database_url, *PROGRAM_TABLES) == installed
