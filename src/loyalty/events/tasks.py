"""Jobs of the events domain."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import orjson
import structlog

from loyalty.events import service

log = structlog.get_logger(__name__)


async def events_publish(ctx: dict[str, Any], event_id: str) -> bool:
    """Publish one event (idempotent: a second run finds it published)."""
    published = await service.publish(event_id=uuid.UUID(event_id), redis=ctx["redis"])
    log.info("events.publish", event_id=event_id, published=published)
    return published


async def events_reconcile(ctx: dict[str, Any]) -> int:
    """Re-enqueue events left unpublished and job requests no run has answered (jobs lost
    when Redis failed after the commit, Redis restarts); returns how many were sent."""
    ids = await service.unpublished(older_than=timedelta(seconds=30))
    for event_id in ids:
        await ctx["redis"].enqueue_job(
            "events_publish", str(event_id), _job_id=f"events:publish:{event_id}:retry"
        )
    requests = await service.pending_job_requests(older_than=timedelta(seconds=30))
    for request in requests:
        # Same job id as the first send: a job still queued under it is not queued twice.
        await ctx["redis"].enqueue_job(
            request.function, *orjson.loads(request.args), _job_id=request.key
        )
    if ids or requests:
        log.info("events.reconcile", requeued=len(ids), job_requests=len(requests))
    return len(ids) + len(requests)
