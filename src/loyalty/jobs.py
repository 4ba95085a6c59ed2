"""The job queue as services see it: enqueue after commit, with deterministic job ids.

Jobs queued while a request or job runs are held until the caller's transaction committed
(:meth:`JobQueue.flush`), so a worker never sees a row that was rolled back. The outbox row
written in the transaction is what guarantees delivery; the job is only the fast path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from arq.connections import ArqRedis

QUEUE_NAME = "loyalty:queue"


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
        """Send every deferred job; returns the ids arq accepted (duplicates are dropped)."""
        sent: list[str] = []
        if self.redis is None:
            self.pending.clear()
            return sent
        jobs, self.pending = self.pending, []
        for job in jobs:
            queued = await self.redis.enqueue_job(
                job.function,
                *job.args,
                _job_id=job.job_id,
                _queue_name=QUEUE_NAME,
                _defer_by=job.defer_by,
            )
            if queued is not None:
                sent.append(queued.job_id)
        return sent

    def discard(self) -> None:
        self.pending.clear()
