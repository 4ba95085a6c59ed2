"""Fixed-window rate limiting in Redis: one counter per caller per minute.

Windows follow :mod:`loyalty.clock`, so every process agrees on them and tests can move
time. A counter lives two windows and then expires by itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from loyalty import clock

WINDOW_SECONDS = 60
KEY = "ratelimit:{bucket}:{window}"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    count: int
    retry_after: int  # seconds until the window resets


async def hit(redis: Any, *, bucket: str, limit: int, cost: int = 1) -> Decision:
    """Count ``cost`` operations for ``bucket`` in the current window."""
    now = clock.now().timestamp()
    window = int(now // WINDOW_SECONDS)
    key = KEY.format(bucket=bucket, window=window)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.incrby(key, cost)
        pipe.expire(key, 2 * WINDOW_SECONDS)
        count, _ = await pipe.execute()
    retry_after = max(1, int((window + 1) * WINDOW_SECONDS - now + 0.999))
    return Decision(allowed=int(count) <= limit, count=int(count), retry_after=retry_after)
