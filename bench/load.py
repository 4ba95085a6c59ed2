"""Load driving and round-trip counting shared by the HTTP benchmarks."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import random
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg


@dataclass(frozen=True)
class Load:
    """One load phase: completed requests over wall time, latencies in milliseconds."""

    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float


def _percentile(samples: list[float], q: float) -> float:
    if not samples:
        return 0.0
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def drive(
    ask: Callable[[int], Awaitable[Any]],
    member_ids: Sequence[int],
    *,
    clients: int,
    seconds: float,
    rate: float | None = None,
    rng: random.Random | None = None,
) -> Load:
    """``clients`` callers asking for random members for ``seconds``: as fast as they can, or
    paced together at ``rate`` req/s (latency then counts from the planned start, so a
    backlog shows)."""
    rng = rng or random.Random(7)
    latencies: list[float] = []
    started = time.perf_counter()
    deadline = started + seconds
    interval = clients / rate if rate else 0.0

    async def client(index: int) -> None:
        sent = 0
        while True:
            planned = started + (sent + index / clients) * interval if rate else time.perf_counter()
            if planned >= deadline:
                return
            delay = planned - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await ask(rng.choice(member_ids))
            latencies.append((time.perf_counter() - planned) * 1000)
            sent += 1

    await asyncio.gather(*(client(i) for i in range(clients)))
    elapsed = time.perf_counter() - started
    return Load(
        requests=len(latencies),
        seconds=elapsed,
        rps=len(latencies) / elapsed if elapsed else 0.0,
        p50_ms=statistics.median(latencies) if latencies else 0.0,
        p99_ms=_percentile(latencies, 0.99),
    )


_STATEMENT_METHODS = ("execute", "executemany", "fetch", "fetchrow", "fetchval")


@dataclass
class RoundTrips:
    statements: int = 0
    resets: int = 0


@contextlib.contextmanager
def count_round_trips() -> Iterator[RoundTrips]:
    """Counts what every asyncpg connection sends while open: statements (BEGIN and COMMIT
    included) and the reset a pool runs when a connection is released, apart."""
    counts = RoundTrips()
    resetting: contextvars.ContextVar[bool] = contextvars.ContextVar("resetting", default=False)
    cls = asyncpg.connection.Connection
    originals = {name: getattr(cls, name) for name in (*_STATEMENT_METHODS, "reset")}

    def statement(original: Any) -> Any:
        async def run(self: Any, *args: Any, **kwargs: Any) -> Any:
            if not resetting.get():
                counts.statements += 1
            return await original(self, *args, **kwargs)

        return run

    async def reset(self: Any, *args: Any, **kwargs: Any) -> Any:
        counts.resets += 1
        token = resetting.set(True)
        try:
            return await originals["reset"](self, *args, **kwargs)
        finally:
            resetting.reset(token)

    for name in _STATEMENT_METHODS:
        setattr(cls, name, statement(originals[name]))
    cls.reset = reset  # type: ignore[method-assign]
    try:
        yield counts
    finally:
        for name, original in originals.items():
            setattr(cls, name, original)
