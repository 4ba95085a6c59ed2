"""The typed view of arq's ``ctx`` dict that jobs read instead of the dict itself."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from arq.connections import ArqRedis

from loyalty.settings import Settings, get_settings


@dataclass(frozen=True)
class JobContext:
    """What a job may use: the settings, the Redis pool, and which try of which job this is
    (``job_try`` starts at 1; arq counts a :class:`arq.Retry` as a new try)."""

    settings: Settings
    redis: ArqRedis | None
    job_id: str | None
    job_try: int

    @classmethod
    def of(cls, ctx: Mapping[str, Any]) -> JobContext:
        return cls(
            settings=ctx.get("settings") or get_settings(),
            redis=ctx.get("redis"),
            job_id=ctx.get("job_id"),
            job_try=int(ctx.get("job_try") or 1),
        )
