"""Managing webhook endpoints, and writing one delivery per subscribed endpoint with each
domain event.

:func:`add_deliveries` runs in the transaction that records the event (see
:func:`loyalty.events.service.record`): an event that commits has its deliveries, one that
rolls back has none. A delivery is an outbox row of kind :data:`DELIVERY_KIND` whose dedupe
key is the event's dedupe key and the endpoint id (the receiver's ``Idempotency-Key``), and
whose id is derived from the event id and the endpoint id, so the event's publish job finds
its deliveries without a search.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from tortoise.backends.base.client import BaseDBAsyncClient

from loyalty import clock, errors
from loyalty.outbox import service as outbox
from loyalty.webhooks.errors import EndpointNotFound
from loyalty.webhooks.models import WebhookEndpoint

DELIVERY_KIND = "webhook.delivery"
# Namespace of delivery ids: uuid5(namespace, f"{event_id}:{endpoint_id}").
_DELIVERY_IDS = uuid.UUID("5b7c1d52-6f0e-4d55-9a43-0c2f9e4b8a11")

MAX_URL_CHARS = 2000
MAX_KINDS = 50
SECRET_CHARS = (16, 128)
_KIND = re.compile(r"^[a-z][a-z0-9_]*\.(\*|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*)$")
_SECRET = re.compile(r"^[\x21-\x7e]+$")
# Dedupe keys are at most 191 characters; longer event keys are hashed.
_MAX_KEY = 191


def delivery_id(event_id: uuid.UUID, endpoint_id: int) -> uuid.UUID:
    """The outbox row id of an event's delivery to an endpoint (stable)."""
    return uuid.uuid5(_DELIVERY_IDS, f"{event_id}:{endpoint_id}")


def delivery_key(event_key: str, endpoint_id: int) -> str:
    """The dedupe key of an event's delivery to an endpoint: the event's key and the
    endpoint id (the event key is replaced by its SHA-256 when the whole would not fit)."""
    suffix = f"#webhook:{endpoint_id}"
    if len(event_key) + len(suffix) > _MAX_KEY:
        event_key = "sha256:" + hashlib.sha256(event_key.encode()).hexdigest()
    return event_key + suffix


def subscribes(endpoint_kinds: Sequence[str], kind: str) -> bool:
    """Whether a subscription list covers ``kind`` (exact, or its family as ``member.*``)."""
    family = kind.split(".", 1)[0]
    return kind in endpoint_kinds or f"{family}.*" in endpoint_kinds


async def add_deliveries(
    *,
    event_id: uuid.UUID,
    kind: str,
    dedupe_key: str,
    payload: dict[str, Any],
    member_id: int | None,
    created_at: datetime,
    connection: BaseDBAsyncClient | None = None,
) -> list[uuid.UUID]:
    """Write, in the caller's transaction, one PENDING delivery of the event per active
    endpoint subscribed to ``kind``; returns their ids. Idempotent per (event, endpoint)."""
    endpoints = await WebhookEndpoint.filter(active=True).using_db(connection).order_by("id")
    body = {
        "id": str(event_id),
        "kind": kind,
        "member_id": member_id,
        "payload": payload,
        "created_at": created_at.isoformat(),
    }
    ids: list[uuid.UUID] = []
    for endpoint in endpoints:
        if not subscribes(endpoint.event_kinds, kind):
            continue
        ids.append(
            await outbox.add(
                kind=DELIVERY_KIND,
                dedupe_key=delivery_key(dedupe_key, endpoint.id),
                payload={"endpoint_id": endpoint.id, "event": body},
                member_id=member_id,
                row_id=delivery_id(event_id, endpoint.id),
                connection=connection,
            )
        )
    return ids


async def delivery_ids(event_id: uuid.UUID) -> list[uuid.UUID]:
    """The ids every delivery of ``event_id`` would have (one per endpoint ever created;
    a claim by these ids takes only the rows that exist and are due)."""
    endpoint_ids = await WebhookEndpoint.all().order_by("id").values_list("id", flat=True)
    return [delivery_id(event_id, int(i)) for i in endpoint_ids]  # type: ignore[call-overload]


def _check_url(url: str, found: errors.FieldErrors) -> str:
    url = url.strip()
    if not url:
        found.add("input.url", "Enter the endpoint's URL.", "REQUIRED")
        return url
    if len(url) > MAX_URL_CHARS:
        found.add("input.url", f"At most {MAX_URL_CHARS} characters.", "TOO_LONG")
        return url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        found.add("input.url", "An absolute http:// or https:// URL.", "INVALID")
    elif parts.username or parts.password:
        found.add("input.url", "Credentials in the URL are not allowed.", "INVALID")
    elif any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        found.add("input.url", "Spaces and control characters are not allowed.", "INVALID")
    return url


def _check_kinds(kinds: Sequence[str], found: errors.FieldErrors) -> list[str]:
    cleaned = list(dict.fromkeys(k.strip() for k in kinds))
    if not cleaned:
        found.add("input.eventKinds", "Subscribe to at least one event kind.", "REQUIRED")
    elif len(cleaned) > MAX_KINDS:
        found.add("input.eventKinds", f"At most {MAX_KINDS} event kinds.", "TOO_LONG")
    for index, kind in enumerate(cleaned):
        if len(kind) > 64 or not _KIND.match(kind):
            found.add(
                f"input.eventKinds.{index}",
                "An event kind such as member.registered, or a family such as points.*.",
                "INVALID",
            )
        elif kind.split(".", 1)[0] == "webhook":
            found.add(f"input.eventKinds.{index}", "Deliveries are not events.", "INVALID")
    return cleaned


def _check_secret(secret: str | None, found: errors.FieldErrors) -> str:
    if secret is None:
        return secrets.token_urlsafe(32)
    low, high = SECRET_CHARS
    if not low <= len(secret) <= high or not _SECRET.match(secret):
        found.add(
            "input.secret",
            f"{low} to {high} printable characters without spaces (or omit it for a "
            "generated one).",
            "INVALID",
        )
    return secret


async def create_endpoint(
    *, url: str, event_kinds: Sequence[str], secret: str | None = None
) -> WebhookEndpoint:
    """Add an active endpoint; a secret is generated when none is given. Raises
    :class:`~loyalty.errors.ValidationError` (nothing written) on bad input."""
    found = errors.FieldErrors()
    url = _check_url(url, found)
    kinds = _check_kinds(event_kinds, found)
    secret = _check_secret(secret, found)
    found.raise_if_any()
    return await WebhookEndpoint.create(
        url=url, secret=secret, event_kinds=kinds, active=True, created_at=clock.now()
    )


async def deactivate_endpoint(*, endpoint_id: int) -> WebhookEndpoint:
    """Stop deliveries to the endpoint: new events skip it, and deliveries still waiting are
    SUPPRESSED when their turn comes. Idempotent. Raises
    :class:`~loyalty.webhooks.errors.EndpointNotFound`."""
    endpoint = await WebhookEndpoint.get_or_none(id=endpoint_id)
    if endpoint is None:
        raise EndpointNotFound(endpoint_id)
    if endpoint.active:
        await WebhookEndpoint.filter(id=endpoint_id, active=True).update(
            active=False, deactivated_at=clock.now()
        )
        await endpoint.refresh_from_db()
    return endpoint


async def list_endpoints(*, active: bool | None = None) -> list[WebhookEndpoint]:
    """Endpoints in creation order, only active (or inactive) ones when ``active`` is set."""
    query = WebhookEndpoint.all()
    if active is not None:
        query = query.filter(active=active)
    return await query.order_by("id")
