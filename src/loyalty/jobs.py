"""The job queue as services see it: enqueue after commit, with deterministic job ids.

Jobs queued while a request or job runs are held until the caller's transaction committed
(:meth:`JobQueue.flush`), so a worker never sees a row that was rolled back. The outbox row
written in the transaction is what guarantees delivery; the job is only the fast path, so
sending it is best effort: a Redis failure after the commit is logged, never raised, and the
reconciler sends the job from the outbox row once Redis answers again.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import structlog
from arq.connections import ArqRedis

QUEUE_NAME = "loyalty:queue"

# How long sending the jobs of one request may take before the rest is left to the reconciler.
FLUSH_TIMEOUT_SECONDS = 2.0

log = structlog.get_logger(__name__)


@dataclass
class PendingJob:
    function: str
    args: tuple[Any, ...]
    job_id: str | None
    defer_by: float | None = None


@dataclass
class JobQueue:
    """Per-request buffer of jobs to send after commit."""

    redis: ArqRedis | None
    pending: list[PendingJob] = field(default_factory=list)

    def defer(
        self, function: str, *args: Any, job_id: str | None = None, defer_by: float | None = None
    ) -> None:
        """Queue ``function(*args)`` to be sent by :meth:`flush`."""
        self.pending.append(PendingJob(function, args, job_id, defer_by))

    async def flush(self) -> list[str]:
        """Send every deferred job; returns the ids arq accepted (duplicates are dropped).

        Never raises: the caller's change is committed and its outbox row delivers the job
        later. On the first failure (or after :data:`FLUSH_TIMEOUT_SECONDS`) the jobs not sent
        yet are logged and dropped from this queue.
        """
        sent: list[str] = []
        if self.redis is None:
            self.pending.clear()
            return sent
        jobs, self.pending = self.pending, []
        done = 0
        try:
            async with asyncio.timeout(FLUSH_TIMEOUT_SECONDS):
                for job in jobs:
                    queued = await self.redis.enqueue_job(
                        job.function,
                        *job.args,
                        _job_id=job.job_id,
                        _queue_name=QUEUE_NAME,
                        _defer_by=job.defer_by,
                    )
                    done += 1
                    if queued is not None:
                        sent.append(queued.job_id)
        except Exception as exc:  # after commit: the outbox row is the guarantee, not this
            log.warning(
                "jobs.enqueue_failed",
                error=type(exc).__name__,
                job=jobs[done].function,
                job_id=jobs[done].job_id,
                not_sent=len(jobs) - done,
            )
        return sent

    def discard(self) -> None:
        self.pending.clear()
