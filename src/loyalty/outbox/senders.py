"""Who delivers each kind of outbox row: one sender per kind family, declared here.

A row's sender is looked up by its exact kind, then by its family (the part before the first
dot: ``member.registered`` → ``member``). A sender returns when the receiver accepted the
delivery; it raises :class:`Undeliverable` when retrying cannot help (the row goes DEAD at
once), :class:`Suppressed` when the delivery must not happen (SUPPRESSED with the reason), and
anything else for a transient failure (retried with backoff).

Every sender passes ``dedupe_key`` on to the receiver (a stream field here, an
``Idempotency-Key`` header for HTTP), so a resend after a crash is recognisable there.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import orjson

STREAM = "loyalty:events"
STREAM_MAXLEN = 100_000


@dataclass(frozen=True, slots=True)
class Delivery:
    """One claimed row, as a sender sees it. ``attempt`` counts from 1."""

    id: uuid.UUID
    kind: str
    dedupe_key: str
    member_id: int | None
    payload: dict[str, Any]
    created_at: datetime
    attempt: int


class Undeliverable(Exception):
    """The receiver refused the delivery for good (no sender, invalid payload, 4xx)."""


class Suppressed(Exception):
    """The delivery must not happen (e.g. the member opted out); ``str()`` is the reason."""


class Sender(Protocol):
    async def __call__(self, delivery: Delivery, *, redis: Any) -> None: ...


async def to_event_stream(delivery: Delivery, *, redis: Any) -> None:
    """Append a domain event to the Redis stream :data:`STREAM`.

    The ``event`` field keeps the event's shape (id, kind, member_id, payload, created_at);
    ``dedupe_key`` is a field of its own, for consumers that drop repeats."""
    body = {
        "id": str(delivery.id),
        "kind": delivery.kind,
        "member_id": delivery.member_id,
        "payload": delivery.payload,
        "created_at": delivery.created_at.isoformat(),
    }
    await redis.xadd(
        STREAM,
        {"event": orjson.dumps(body), "dedupe_key": delivery.dedupe_key},
        maxlen=STREAM_MAXLEN,
        approximate=True,
    )


async def to_webhook(delivery: Delivery, *, redis: Any) -> None:
    """POST a webhook delivery to its endpoint (:mod:`loyalty.webhooks.sender`)."""
    from loyalty.webhooks import sender  # the webhooks domain builds on this module

    await sender.post(delivery)


# Kind or kind family → sender. Member messages add theirs here.
SENDERS: dict[str, Sender] = {
    "member": to_event_stream,
    "order": to_event_stream,
    "points": to_event_stream,
    "tier": to_event_stream,
    "webhook": to_webhook,
}


def sender_for(kind: str) -> Sender:
    """The sender of ``kind``; raises :class:`Undeliverable` when none is declared."""
    sender = SENDERS.get(kind) or SENDERS.get(kind.split(".", 1)[0])
    if sender is None:
        raise Undeliverable(f"no sender for kind {kind!r}")
    return sender
