"""Jobs of the events domain."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import orjson
import structlog

from loyalty.events import service
from loyalty.outbox import service as outbox
from loyalty.settings import get_settings

log = structlog.get_logger(__name__)

# A job request younger than this is left to the job sent after its commit.
JOB_REQUEST_GRACE = timedelta(seconds=30)


async def events_publish(ctx: dict[str, Any], event_id: str) -> bool:
    """Publish one event (a claim makes it once: a second run finds it taken or sent)."""
    published = await service.publish(event_id=uuid.UUID(event_id), redis=ctx["redis"])
    log.info("events.publish", event_id=event_id, published=published)
    return published


async def events_reconcile(ctx: dict[str, Any], page_size: int | None = None) -> int:
    """Deliver every due outbox row (expired claims, retries after backoff, rows whose
    publish job was lost when Redis failed after the commit) and re-send the jobs of job
    requests no run has answered, page by page; returns how many were delivered or sent."""
    settings = ctx.get("settings") or get_settings()
    size = page_size or settings.outbox_page_size
    report = await outbox.deliver_all_due(
        redis=ctx["redis"], page_size=size, policy=outbox.Policy.from_settings(settings)
    )
    sent_jobs = 0
    after: int | None = None
    while True:
        requests = await service.pending_job_requests(
            older_than=JOB_REQUEST_GRACE, limit=size, after=after
        )
        for request in requests:
            # Same job id as the first send: a job still queued under it is not queued twice.
            await ctx["redis"].enqueue_job(
                request.function, *orjson.loads(request.args), _job_id=request.key
            )
        sent_jobs += len(requests)
        if len(requests) < size:
            break
        after = requests[-1].id
    try:
        await outbox.refresh_metrics()
    except Exception as exc:  # the gauges wait for the next pass or scrape
        log.warning("events.reconcile_metrics_failed", error=type(exc).__name__)
    if report.claimed or sent_jobs:
        log.info(
            "events.reconcile",
            delivered=report.sent,
            failed=report.failed,
            dead=report.dead,
            job_requests=sent_jobs,
        )
    return report.sent + sent_jobs
