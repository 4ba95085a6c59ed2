"""Runtime configuration: one typed settings object read from ``LOYALTY_*`` variables.

This is the only module that reads the environment. Business tunables (reward amounts,
thresholds, tier rules) live in the database, not here.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

DEV_JWT_SECRET = "dev-only-secret-change-me-in-production-0000"
WECHAT_API_BASE = "https://api.weixin.qq.com"


class Settings(BaseSettings):
    """All process settings. Every field maps to ``LOYALTY_<FIELD>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="LOYALTY_", env_file=".env", extra="ignore")

    env: Literal["dev", "test", "prod"] = Field("dev", description="dev, test or prod")
    database_url: str = Field(
        "sqlite://./var/loyalty.sqlite3",
        description="Tortoise URL: sqlite://path or postgres://user:pass@host:port/db",
    )
    database_pool_size: int = Field(
        10, ge=1, le=200, description="PostgreSQL connections per process (pool maximum)"
    )
    redis_url: str | None = Field(
        None,
        description="redis://host:port/db (required in prod); "
        "unset starts an embedded Redis under data_dir",
    )
    data_dir: Path = Field(Path("./var"), description="Where the embedded SQLite/Redis live")
    jwt_secret: SecretStr = Field(SecretStr(DEV_JWT_SECRET), description="HS256 signing key")
    jwt_key_id: str = Field("k1", description="`kid` header of issued tokens (key rotation)")
    jwt_previous_keys: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="Retired signing keys by `kid` (JSON object), still accepted to verify",
    )
    access_token_ttl_seconds: int = Field(900, ge=60, description="Access token lifetime")
    refresh_token_ttl_seconds: int = Field(
        30 * 24 * 3600, ge=3600, description="Refresh token lifetime (rotated on use)"
    )
    business_timezone: str = Field("Asia/Shanghai", description="IANA zone for business days")
    log_format: Literal["console", "json"] = Field(
        "console",
        description="console or json (one JSON object per line, uvicorn's lines included)",
    )
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR")
    host: str = Field("127.0.0.1", description="Bind address of `loyalty serve`")
    port: int = Field(8000, ge=1, le=65535, description="Port of `loyalty serve` / `dev`")
    graphiql: bool | None = Field(None, description="Serve GraphiQL; default: on only in dev")
    introspection: bool | None = Field(None, description="Allow introspection; default: not prod")
    max_body_bytes: int = Field(1_000_000, ge=1024, description="Largest accepted request body")
    max_query_chars: int = Field(15_000, description="Longest accepted query text")
    max_query_depth: int = Field(10, description="Deepest accepted selection")
    max_aliases: int = Field(15, description="Most aliases in one operation")
    max_tokens: int = Field(2_000, description="Most lexical tokens in one document")
    max_query_cost: int = Field(5_000, description="Cost limit (fields × `first` sizes)")
    max_page_size: int = Field(100, description="Largest `first` of any list")
    max_batch_operations: int = Field(5, description="Most operations in one batch")
    rate_limit_per_minute: int = Field(600, ge=1, description="GraphQL operations per principal")
    anonymous_rate_limit_per_minute: int = Field(120, ge=1, description="Per IP, anonymous")
    wechat_api_base: str | None = Field(
        None,
        description="WeChat server API host; unset: https://api.weixin.qq.com, "
        "or in dev the built-in stand-in (/dev/wechat)",
    )
    wechat_app_id: str = Field("wx-demo-app", description="Mini-program app id")
    wechat_app_secret: SecretStr = Field(
        SecretStr("wx-demo-secret"), description="Mini-program app secret"
    )
    wechat_timeout_seconds: float = Field(5.0, gt=0, description="WeChat API call timeout")
    metrics_token: SecretStr | None = Field(
        None,
        description="When set, /metrics needs `Authorization: Bearer <token>` (401 otherwise)",
    )
    worker_max_jobs: int = Field(100, ge=1, description="Jobs one worker runs at once")
    outbox_max_attempts: int = Field(
        8, ge=1, description="Delivery attempts of an outbox row before it is DEAD"
    )
    outbox_backoff_seconds: float = Field(
        5.0, gt=0, description="Wait after a first failed delivery (doubles each attempt)"
    )
    outbox_backoff_max_seconds: float = Field(
        3_600.0, gt=0, description="Longest wait between two delivery attempts"
    )
    outbox_lease_seconds: float = Field(
        60.0, gt=0, description="How long a claimed outbox row stays with its sender"
    )
    outbox_page_size: int = Field(
        500, ge=1, le=10_000, description="Rows the outbox reconciler claims per page"
    )
    fanout_chunk_size: int = Field(
        2_000, ge=1, le=5_000, description="Members per chunk job of a batch run (1-5,000)"
    )
    fanout_chunk_lease_seconds: int = Field(
        600,
        ge=60,
        description="A chunk not done this long after it was sent is sent again; keep it "
        "longer than the chunk job timeout (300 s)",
    )
    fanout_chunk_max_resends: int = Field(
        5, ge=0, le=100, description="Re-sends of a lost chunk before its members count as failed"
    )
    webhook_timeout_seconds: float = Field(
        5.0, gt=0, le=60, description="How long a webhook endpoint has to answer a delivery"
    )
    worker_in_process: bool | None = Field(
        None, description="Run the arq worker inside the API process; default: on for SQLite"
    )

    @field_validator("wechat_api_base")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @field_validator("business_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("metrics_token")
    @classmethod
    def _long_metrics_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters")
        return value

    @model_validator(mode="after")
    def _prod_refuses_dev_defaults(self) -> Settings:
        if self.env == "prod" and self.jwt_secret.get_secret_value() == DEV_JWT_SECRET:
            raise ValueError("LOYALTY_JWT_SECRET must be set in prod (the dev default is refused)")
        if self.env == "prod" and len(self.jwt_secret.get_secret_value()) < 32:
            raise ValueError("LOYALTY_JWT_SECRET must be at least 32 characters in prod")
        if self.env == "prod" and not self.redis_url:
            # The embedded Redis is private to one process: API processes and workers
            # would each get their own queue.
            raise ValueError(
                "LOYALTY_REDIS_URL must be set in prod (the embedded Redis is dev only)"
            )
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def graphiql_enabled(self) -> bool:
        return self.env == "dev" if self.graphiql is None else self.graphiql

    @property
    def introspection_enabled(self) -> bool:
        return self.env != "prod" if self.introspection is None else self.introspection

    @property
    def wechat_dev_standin(self) -> bool:
        """WeChat calls go to the dev stand-in (:mod:`loyalty.dev_wechat`): dev, no host set."""
        return self.env == "dev" and self.wechat_api_base is None

    @property
    def wechat_api_url(self) -> str:
        return self.wechat_api_base or WECHAT_API_BASE

    @property
    def run_worker_in_process(self) -> bool:
        return self.is_sqlite if self.worker_in_process is None else self.worker_in_process


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (tests build their own ``Settings`` and pass them in)."""
    return Settings()


class SettingsRefused(Exception):
    """The environment holds settings the process must not start with.

    ``str()`` is one line naming each variable and what is wrong; it never contains a
    submitted value, so a rejected secret cannot reach a log.
    """


def refusal_reason(error: ValidationError | SettingsError) -> str:
    """One line per problem (joined by ``; ``), built from names and messages only."""
    if isinstance(error, SettingsError):
        # pydantic-settings says only which field it could not decode (JSON values).
        match = re.search(r'field "([^"]+)"', str(error))
        name = f"LOYALTY_{match.group(1).upper()}" if match else "a LOYALTY_ variable"
        return f"{name}: not valid JSON"
    reasons = []
    for problem in error.errors(include_input=False, include_url=False, include_context=False):
        message = problem["msg"].removeprefix("Value error, ")
        location = problem["loc"]
        if location:
            message = f"LOYALTY_{str(location[0]).upper()}: {message}"
        reasons.append(message)
    return "; ".join(reasons)


def load_settings() -> Settings:
    """:func:`get_settings`, raising :class:`SettingsRefused` with a one-line reason."""
    try:
        return get_settings()
    except (ValidationError, SettingsError) as error:
        raise SettingsRefused(refusal_reason(error)) from None
