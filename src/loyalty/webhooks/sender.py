"""The HTTP sender of webhook deliveries: a signed JSON POST to the endpoint.

Headers: ``Idempotency-Key`` (the delivery's dedupe key: the same on every attempt, so a
resend after a crash between send and mark is recognisable), ``X-Loyalty-Event`` (the event
kind) and ``X-Loyalty-Signature: sha256=<hex>`` (HMAC-SHA256 of the exact body bytes with the
endpoint's secret).

Outcomes: 2xx → SENT; 5xx, 408, 429, timeouts and connection errors → transient (retried
with backoff); any other status → :class:`Undeliverable` (DEAD at once, the status in
``last_error``); an endpoint deactivated since → :class:`Suppressed`.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ssl

import httpx
import orjson

from loyalty.outbox.senders import Delivery, Suppressed, Undeliverable
from loyalty.settings import get_settings
from loyalty.webhooks.models import WebhookEndpoint

SIGNATURE_HEADER = "X-Loyalty-Signature"
EVENT_HEADER = "X-Loyalty-Event"
IDEMPOTENCY_HEADER = "Idempotency-Key"
# Statuses below 500 that are worth retrying.
RETRIED_STATUSES = frozenset({408, 429})


class DeliveryFailed(Exception):
    """A transient failure: the receiver answered 5xx/408/429, timed out or was unreachable."""


def sign(secret: str, body: bytes) -> str:
    """The signature header's value of ``body``: ``sha256=`` and the HMAC's hex digest."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def body_of(delivery: Delivery) -> bytes:
    """The bytes POSTed: the event as JSON (sorted keys, so every attempt sends the same)."""
    return orjson.dumps(delivery.payload["event"], option=orjson.OPT_SORT_KEYS)


@functools.cache
def _tls() -> ssl.SSLContext:
    # Built once: a fresh client per delivery would otherwise load the CA bundle each time.
    return ssl.create_default_context()


async def post(delivery: Delivery) -> None:
    """POST one delivery; returns when the receiver accepted it (see the module doc)."""
    endpoint_id = delivery.payload.get("endpoint_id")
    endpoint = await WebhookEndpoint.get_or_none(id=endpoint_id)
    if endpoint is None:
        raise Undeliverable(f"webhook endpoint {endpoint_id} does not exist")
    if not endpoint.active:
        raise Suppressed("webhook endpoint deactivated")
    body = body_of(delivery)
    headers = {
        "Content-Type": "application/json",
        IDEMPOTENCY_HEADER: delivery.dedupe_key,
        EVENT_HEADER: str(delivery.payload["event"]["kind"]),
        SIGNATURE_HEADER: sign(endpoint.secret, body),
    }
    timeout = get_settings().webhook_timeout_seconds
    try:
        async with httpx.AsyncClient(
            timeout=timeout, verify=_tls(), follow_redirects=False, trust_env=False
        ) as client:
            response = await client.post(endpoint.url, content=body, headers=headers)
    except httpx.TimeoutException as exc:
        raise DeliveryFailed(f"no answer within {timeout:g} s ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        raise DeliveryFailed(f"could not connect: {type(exc).__name__}: {exc}") from exc
    status = response.status_code
    if 200 <= status < 300:
        return
    answer = f"HTTP {status} {response.reason_phrase}".rstrip()
    if status >= 500 or status in RETRIED_STATUSES:
        raise DeliveryFailed(answer)
    raise Undeliverable(answer)
