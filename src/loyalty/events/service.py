"""Recording and publishing domain events.

``record`` runs inside the caller's transaction (pass its connection) and returns the event id;
the caller defers ``events_publish`` after commit. ``publish`` is idempotent.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import orjson
from tortoise.backends.base.client import BaseDBAsyncClient

from loyalty import clock
from loyalty.events.models import Event
from loyalty.jobs import JobQueue

STREAM = "loyalty:events"
STREAM_MAXLEN = 100_000


async def record(
    *,
    kind: str,
    dedupe_key: str,
    payload: dict[str, Any],
    member_id: int | None = None,
    connection: BaseDBAsyncClient | None = None,
) -> uuid.UUID:
    """Insert the event unless ``dedupe_key`` exists; returns the (existing) event id."""
    existing = await Event.filter(dedupe_key=dedupe_key).using_db(connection).first()
    if existing is not None:
        return existing.id
    event = await Event.create(
        id=uuid.uuid4(),
        kind=kind,
        dedupe_key=dedupe_key,
        member_id=member_id,
        payload=payload,
        created_at=clock.now(),
        using_db=connection,
    )
    return event.id


def publish_later(jobs: JobQueue, event_id: uuid.UUID) -> None:
    """Defer the publish job (sent after the caller's commit)."""
    jobs.defer("events_publish", str(event_id), job_id=f"events:publish:{event_id}")


async def publish(*, event_id: uuid.UUID, redis: Any) -> bool:
    """Push the event to the Redis stream once; returns False if it was already published."""
    event = await Event.get_or_none(id=event_id)
    if event is None or event.published_at is not None:
        return False
    await Event.filter(id=event_id).update(attempts=event.attempts + 1)
    body = {
        "id": str(event.id),
        "kind": event.kind,
        "member_id": event.member_id,
        "payload": event.payload,
        "created_at": event.created_at.isoformat(),
    }
    await redis.xadd(STREAM, {"event": orjson.dumps(body)}, maxlen=STREAM_MAXLEN, approximate=True)
    updated = await Event.filter(id=event_id, published_at=None).update(published_at=clock.now())
    return updated == 1


async def unpublished(*, older_than: timedelta, limit: int = 1000) -> list[uuid.UUID]:
    """Events still waiting for their publisher (the reconciler re-enqueues them)."""
    cutoff = clock.now() - older_than
    rows = (
        await Event.filter(published_at=None, created_at__lte=cutoff)
        .order_by("created_at")
        .limit(limit)
        .values_list("id", flat=True)
    )
    return list(rows)  # type: ignore[arg-type]
