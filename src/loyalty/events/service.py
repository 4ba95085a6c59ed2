"""Recording and publishing domain events, and the requests for jobs that must run.

Events are outbox rows (:mod:`loyalty.outbox`). ``record`` runs inside the caller's
transaction (pass its connection) and returns the event id; the caller defers
``events_publish`` after commit, the fast path. ``publish`` claims the row before sending it,
so the publisher and the reconciler never both deliver one event.

``request_job`` is the same outbox for work that is not an event (re-evaluating every member
after a ladder change): the row commits with the change, the job is sent after commit as the
fast path, and the reconciler sends it again while the row is pending.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import orjson
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import F

from loyalty import clock, db
from loyalty.events.models import JobRequest
from loyalty.jobs import JobQueue
from loyalty.outbox import service as outbox
from loyalty.outbox.senders import STREAM, STREAM_MAXLEN
from loyalty.points import sql
from loyalty.webhooks import service as webhooks

__all__ = ["STREAM", "STREAM_MAXLEN"]


async def record(
    *,
    kind: str,
    dedupe_key: str,
    payload: dict[str, Any],
    member_id: int | None = None,
    connection: BaseDBAsyncClient | None = None,
) -> uuid.UUID:
    """Insert the event unless ``dedupe_key`` exists; returns the (existing) event id.

    A new event also gets, in the same transaction, one webhook delivery per active endpoint
    subscribed to its kind (:func:`loyalty.webhooks.service.add_deliveries`)."""
    row, created = await outbox.add_row(
        kind=kind,
        dedupe_key=dedupe_key,
        payload=payload,
        member_id=member_id,
        connection=connection,
    )
    if created:
        await webhooks.add_deliveries(
            event_id=row.id,
            kind=kind,
            dedupe_key=dedupe_key,
            payload=payload,
            member_id=member_id,
            created_at=row.created_at,
            connection=connection,
        )
    return row.id


def publish_later(jobs: JobQueue, event_id: uuid.UUID) -> None:
    """Defer the publish job (sent after the caller's commit)."""
    jobs.defer("events_publish", str(event_id), job_id=f"events:publish:{event_id}")


async def publish(*, event_id: uuid.UUID, redis: Any) -> bool:
    """Claim the event and push it to the Redis stream, then send its due webhook
    deliveries; False when the event was not due (already sent, held by another sender, or
    waiting for its next attempt) or the push failed (the row is then retried with
    backoff)."""
    report = await outbox.deliver(redis=redis, ids=[event_id], limit=1)
    deliveries = await webhooks.delivery_ids(event_id)
    if deliveries:
        # The event's webhook deliveries go out with it (the reconciler retries them).
        await outbox.deliver(redis=redis, ids=deliveries, limit=len(deliveries))
    return report.sent == 1


async def request_job(
    *,
    function: str,
    key: str,
    args: tuple[Any, ...] = (),
    connection: BaseDBAsyncClient | None = None,
) -> None:
    """Record, in the caller's transaction, that ``function(*args)`` must run after it commits.

    ``key`` is the job id: requests under one key share a row and at most one queued job (the
    latest ``args`` win). Send the job after commit with :func:`send_job_later`.
    """
    conn = connection or db.connection()
    await sql.execute(
        conn,
        "INSERT INTO job_request (key, function, args, requests, done, requested_at) "
        "VALUES (?, ?, ?, 1, 0, ?) ON CONFLICT (key) DO UPDATE SET "
        "requests = job_request.requests + 1, function = excluded.function, "
        "args = excluded.args, requested_at = excluded.requested_at",
        key,
        function,
        orjson.dumps(list(args)).decode(),
        clock.now(),
    )


def send_job_later(jobs: JobQueue, *, function: str, key: str, args: tuple[Any, ...] = ()) -> None:
    """Defer the job of a :func:`request_job` (sent after the caller's commit)."""
    jobs.defer(function, *args, job_id=key)


async def start_job_request(*, key: str) -> int | None:
    """Called by the job as it starts: the request count it answers (None: no request row)."""
    rows = await JobRequest.filter(key=key).values_list("requests", flat=True)
    return int(rows[0]) if rows else None  # type: ignore[arg-type]


async def finish_job_request(*, key: str, seen: int | None) -> None:
    """Mark the requests counted by :func:`start_job_request` done; later ones stay pending."""
    if seen is None:
        return
    await JobRequest.filter(key=key, done__lt=seen).update(done=seen, done_at=clock.now())


async def pending_job_requests(
    *, older_than: timedelta, limit: int = 1000, after: int | None = None
) -> list[JobRequest]:
    """Requests no run has answered yet, made at least ``older_than`` ago, in id order after
    ``after`` (keyset pages; the reconciler sends their jobs again)."""
    cutoff = clock.now() - older_than
    query = JobRequest.filter(requests__gt=F("done"), requested_at__lte=cutoff)
    if after is not None:
        query = query.filter(id__gt=after)
    return await query.order_by("id").limit(limit)
