"""Webhook deliveries: an event becomes one signed POST per subscribed endpoint, retried
with backoff on transient failures, DEAD when refused or out of attempts, sent again from
GraphQL; admins see the outbox (real databases, real Redis, a loopback HTTP receiver)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest
from arq.connections import ArqRedis
from tortoise.transactions import in_transaction

from loyalty import clock
from loyalty.events import service as events
from loyalty.outbox import service as outbox
from loyalty.outbox.models import OutboxMessage, OutboxStatus
from loyalty.settings import Settings
from loyalty.webhooks import sender
from loyalty.webhooks import service as webhooks
from tests.webhooks.receiver import Receiver

pytestmark = pytest.mark.usefixtures("orm")

POLICY = outbox.Policy(
    max_attempts=3, backoff_seconds=10, backoff_max_seconds=1_000, lease_seconds=60
)
SECRET = "receiver-secret-0123456789"

CREATE = """
mutation Create($input: CreateWebhookEndpointInput!) {
  createWebhookEndpoint(input: $input) {
    __typename
    ... on CreateWebhookEndpointSuccess { secret endpoint { id url eventKinds active } }
    ... on ValidationError { code fields { field code } }
  }
}
"""
DEACTIVATE = """
mutation Deactivate($id: ID!) {
  deactivateWebhookEndpoint(input: {id: $id}) {
    __typename
    ... on DeactivateWebhookEndpointSuccess { endpoint { id active deactivatedAt } }
    ... on NotFoundError { code }
  }
}
"""
ENDPOINTS = "query { webhookEndpoints { id url eventKinds active } }"
STATS = """
query { outboxStats {
  rows { status kind count } byStatus { status count } oldestPendingAgeSeconds
} }
"""
RETRY = """
mutation Retry($kind: String) {
  retryDeadDeliveries(kind: $kind) {
    __typename
    ... on RetryDeadDeliveriesSuccess { retried }
    ... on ValidationError { code }
  }
}
"""
REGISTER = """
mutation { registerMember(input: {channel: POS, displayName: "Hook", phone: "13812345678"}) {
  __typename ... on RegisterMemberSuccess { member { id } }
} }
"""


async def create_endpoint(gql: Any, url: str, kinds: list[str], **extra: Any) -> dict[str, Any]:
    body = await gql(CREATE, {"input": {"url": url, "eventKinds": kinds, **extra}})
    result = body["data"]["createWebhookEndpoint"]
    assert result["__typename"] == "CreateWebhookEndpointSuccess", result
    return result  # type: ignore[no-any-return]


async def record_event(kind: str = "member.tested", key: str = "member.tested:1") -> Any:
    async with in_transaction() as conn:
        return await events.record(
            kind=kind, dedupe_key=key, payload={"n": 1}, member_id=7, connection=conn
        )


async def delivery_row() -> OutboxMessage:
    return await OutboxMessage.get(kind=webhooks.DELIVERY_KIND)


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def test_a_registered_member_is_posted_once_signed_with_its_idempotency_key(
    gql: Any, receiver: Receiver, worker: Any
) -> None:
    created = await create_endpoint(gql, receiver.url, ["member.*"])
    await create_endpoint(gql, receiver.url + "/points", ["points.earned"])
    gone = await create_endpoint(gql, receiver.url + "/gone", ["member.registered"])
    await gql(DEACTIVATE, {"id": gone["endpoint"]["id"]})

    body = await gql(REGISTER)
    assert body["data"]["registerMember"]["__typename"] == "RegisterMemberSuccess"
    await worker()

    assert len(receiver.requests) == 1
    (request,) = receiver.requests
    event = await OutboxMessage.get(kind="member.registered")
    row = await delivery_row()
    assert (request.method, request.path) == ("POST", "/hooks/loyalty")
    assert request.headers["idempotency-key"] == row.dedupe_key
    assert row.dedupe_key == f"{event.dedupe_key}#webhook:{created['endpoint']['id']}"
    assert request.headers["x-loyalty-event"] == "member.registered"
    assert request.headers["content-type"] == "application/json"
    assert hmac.compare_digest(
        request.headers["x-loyalty-signature"], signature(created["secret"], request.body)
    )
    sent = orjson.loads(request.body)
    assert sent["id"] == str(event.id)
    assert sent["kind"] == "member.registered"
    assert sent["member_id"] == event.member_id
    assert sent["payload"] == event.payload
    assert (row.status, row.attempts, row.member_id) == (OutboxStatus.SENT, 1, event.member_id)
    assert event.status == OutboxStatus.SENT
    assert await OutboxMessage.filter(kind=webhooks.DELIVERY_KIND).count() == 1


async def test_an_event_rolled_back_has_no_delivery_and_a_repeat_adds_none(
    gql: Any, receiver: Receiver
) -> None:
    await create_endpoint(gql, receiver.url, ["member.tested"])
    with pytest.raises(RuntimeError):
        async with in_transaction() as conn:
            await events.record(kind="member.tested", dedupe_key="k", payload={}, connection=conn)
            raise RuntimeError("the change fails")
    assert await OutboxMessage.all().count() == 0

    first = await record_event()
    assert await record_event() == first
    assert await OutboxMessage.filter(kind=webhooks.DELIVERY_KIND).count() == 1


async def test_a_receiver_answering_500_backs_off_then_is_dead_and_retry_delivers_it(
    gql: Any, receiver: Receiver, redis: ArqRedis, worker: Any
) -> None:
    await create_endpoint(gql, receiver.url, ["member.tested"], secret=SECRET)
    receiver.status = 500
    with clock.frozen(clock.now()):
        await record_event()
        row = await delivery_row()
        waits = []
        for attempt in (1, 2):
            started = clock.now()
            report = await outbox.deliver(redis=redis, ids=[row.id], policy=POLICY)
            assert (report.claimed, report.failed) == (1, 1)
            await row.refresh_from_db()
            assert (row.status, row.attempts) == (OutboxStatus.FAILED, attempt)
            assert row.last_error == "DeliveryFailed: HTTP 500 Internal Server Error"
            waits.append(row.next_attempt_at - started)
            assert (await outbox.deliver(redis=redis, ids=[row.id], policy=POLICY)).claimed == 0
            clock.advance(row.next_attempt_at - started)
        assert timedelta(seconds=5) <= waits[0] <= timedelta(seconds=10)
        assert timedelta(seconds=10) <= waits[1] <= timedelta(seconds=20)

        assert (await outbox.deliver(redis=redis, ids=[row.id], policy=POLICY)).dead == 1
        await row.refresh_from_db()
        assert (row.status, row.attempts) == (OutboxStatus.DEAD, 3)
        assert row.last_error == "DeliveryFailed: HTTP 500 Internal Server Error"
    assert len(receiver.requests) == 3

    receiver.status = 200
    body = await gql(RETRY, {"kind": webhooks.DELIVERY_KIND})
    assert body["data"]["retryDeadDeliveries"] == {
        "__typename": "RetryDeadDeliveriesSuccess",
        "retried": 1,
    }
    await worker()  # the retry queued the reconciler

    await row.refresh_from_db()
    assert (row.status, row.attempts, row.last_error) == (OutboxStatus.SENT, 1, None)
    assert len(receiver.requests) == 4
    assert {r.headers["idempotency-key"] for r in receiver.requests} == {row.dedupe_key}
    assert (await gql(RETRY, {"kind": None}))["data"]["retryDeadDeliveries"]["retried"] == 0


@pytest.mark.parametrize(
    ("status", "outcome", "error"),
    [
        (410, OutboxStatus.DEAD, "Undeliverable: HTTP 410 Gone"),
        (400, OutboxStatus.DEAD, "Undeliverable: HTTP 400 Bad Request"),
        (404, OutboxStatus.DEAD, "Undeliverable: HTTP 404 Not Found"),
        (408, OutboxStatus.FAILED, "DeliveryFailed: HTTP 408 Request Timeout"),
        (429, OutboxStatus.FAILED, "DeliveryFailed: HTTP 429 Too Many Requests"),
        (503, OutboxStatus.FAILED, "DeliveryFailed: HTTP 503 Service Unavailable"),
        (204, OutboxStatus.SENT, None),
    ],
)
async def test_the_answer_decides_the_outcome(
    gql: Any,
    receiver: Receiver,
    redis: ArqRedis,
    status: int,
    outcome: OutboxStatus,
    error: str | None,
) -> None:
    await create_endpoint(gql, receiver.url, ["member.tested"])
    receiver.status = status
    event_id = await record_event()
    await events.publish(event_id=event_id, redis=redis)
    row = await delivery_row()
    assert (row.status, row.attempts, row.last_error) == (outcome, 1, error)
    assert len(receiver.requests) == 1


async def test_timeouts_and_refused_connections_are_retried(
    gql: Any,
    receiver: Receiver,
    redis: ArqRedis,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    short = settings.model_copy(update={"webhook_timeout_seconds": 0.2})
    monkeypatch.setattr(sender, "get_settings", lambda: short)
    receiver.delay = 1.0
    await create_endpoint(gql, receiver.url, ["member.slow"])
    closed = httpx.URL(receiver.url).copy_with(port=1)
    await create_endpoint(gql, str(closed), ["member.slow"])

    event_id = await record_event(kind="member.slow", key="slow:1")
    await events.publish(event_id=event_id, redis=redis)

    rows = await OutboxMessage.filter(kind=webhooks.DELIVERY_KIND).order_by("dedupe_key")
    assert [(r.status, r.attempts) for r in rows] == [(OutboxStatus.FAILED, 1)] * 2
    errors = sorted(r.last_error or "" for r in rows)
    assert errors[0].startswith("DeliveryFailed: could not connect: ConnectError")
    assert errors[1] == "DeliveryFailed: no answer within 0.2 s (ReadTimeout)"


async def test_a_resend_after_a_crash_carries_the_same_idempotency_key_and_body(
    gql: Any, receiver: Receiver, redis: ArqRedis
) -> None:
    await create_endpoint(gql, receiver.url, ["member.tested"], secret=SECRET)
    event_id = await record_event()
    await events.publish(event_id=event_id, redis=redis)
    row = await delivery_row()
    assert row.status == OutboxStatus.SENT
    # The sender crashed after the POST and before the mark: the row is still due.
    await OutboxMessage.filter(id=row.id).update(
        status=OutboxStatus.PENDING, sent_at=None, next_attempt_at=clock.now()
    )

    assert (await outbox.deliver(redis=redis, ids=[row.id], policy=POLICY)).sent == 1

    first, second = receiver.requests
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"]
    assert first.headers["idempotency-key"] == row.dedupe_key
    assert first.body == second.body
    assert first.headers["x-loyalty-signature"] == second.headers["x-loyalty-signature"]
    assert second.headers["x-loyalty-signature"] == signature(SECRET, second.body)


async def test_a_delivery_to_an_endpoint_deactivated_since_is_suppressed(
    gql: Any, receiver: Receiver, redis: ArqRedis
) -> None:
    created = await create_endpoint(gql, receiver.url, ["member.tested"])
    event_id = await record_event()
    body = await gql(DEACTIVATE, {"id": created["endpoint"]["id"]})
    result = body["data"]["deactivateWebhookEndpoint"]
    assert result["__typename"] == "DeactivateWebhookEndpointSuccess"
    assert result["endpoint"]["active"] is False

    await events.publish(event_id=event_id, redis=redis)

    row = await delivery_row()
    assert (row.status, row.suppressed_reason) == (
        OutboxStatus.SUPPRESSED,
        "webhook endpoint deactivated",
    )
    assert receiver.requests == []
    again = await gql(DEACTIVATE, {"id": created["endpoint"]["id"]})
    assert again["data"]["deactivateWebhookEndpoint"]["endpoint"]["active"] is False


async def test_outbox_stats_count_rows_by_status_and_kind(
    gql: Any, receiver: Receiver, redis: ArqRedis
) -> None:
    await create_endpoint(gql, receiver.url, ["member.tested"])
    receiver.status = 410
    with clock.frozen(clock.now()):
        await events.publish(event_id=await record_event(), redis=redis)
        await record_event(kind="points.tested", key="p:1")
        clock.advance(timedelta(seconds=90))
        stats = await outbox.stats()
    assert stats.oldest_pending_age == timedelta(seconds=90)

    body = await gql(STATS)
    result = body["data"]["outboxStats"]
    assert result["rows"] == [
        {"status": "PENDING", "kind": "points.tested", "count": 1},
        {"status": "SENT", "kind": "member.tested", "count": 1},
        {"status": "DEAD", "kind": "webhook.delivery", "count": 1},
    ]
    assert result["byStatus"] == [
        {"status": "PENDING", "count": 1},
        {"status": "SENT", "count": 1},
        {"status": "DEAD", "count": 1},
    ]
    assert result["oldestPendingAgeSeconds"] >= 0


async def test_metrics_count_deliveries_and_show_the_outbox_depth(
    gql: Any, client: httpx.AsyncClient, receiver: Receiver, redis: ArqRedis
) -> None:
    def value(text: str, line_start: str) -> float:
        for line in text.splitlines():
            if line.startswith(line_start):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    delivered = 'loyalty_outbox_delivered_total{kind="webhook.delivery"}'
    dead = 'loyalty_outbox_dead_total{kind="webhook.delivery"}'
    before = (await client.get("/metrics")).text
    await create_endpoint(gql, receiver.url, ["member.tested"])
    await events.publish(event_id=await record_event(), redis=redis)
    receiver.status = 410
    await events.publish(event_id=await record_event(key="member.tested:2"), redis=redis)
    await record_event(kind="points.tested", key="p:1")

    after = (await client.get("/metrics")).text
    assert value(after, delivered) - value(before, delivered) == 1
    assert value(after, dead) - value(before, dead) == 1
    assert value(after, 'loyalty_outbox_rows{kind="webhook.delivery",status="SENT"}') == 1
    assert value(after, 'loyalty_outbox_rows{kind="webhook.delivery",status="DEAD"}') == 1
    assert value(after, 'loyalty_outbox_rows{kind="points.tested",status="PENDING"}') == 1
    assert value(after, "loyalty_outbox_oldest_pending_age_seconds") >= 0
    assert "loyalty_outbox_oldest_pending_age_seconds" in after


async def test_endpoints_are_listed_without_their_secrets(gql: Any, receiver: Receiver) -> None:
    created = await create_endpoint(gql, receiver.url, ["member.*", "tier.changed"])
    assert len(created["secret"]) >= 32
    body = await gql(ENDPOINTS)
    assert body["data"]["webhookEndpoints"] == [
        {
            "id": created["endpoint"]["id"],
            "url": receiver.url,
            "eventKinds": ["member.*", "tier.changed"],
            "active": True,
        }
    ]
    assert created["secret"] not in orjson.dumps(body).decode()


@pytest.mark.parametrize(
    ("url", "kinds", "secret", "field"),
    [
        ("ftp://example.test/x", ["member.registered"], None, "input.url"),
        ("https://user:pw@example.test/x", ["member.registered"], None, "input.url"),
        ("", ["member.registered"], None, "input.url"),
        ("https://example.test/x", [], None, "input.eventKinds"),
        ("https://example.test/x", ["Member Registered"], None, "input.eventKinds.0"),
        ("https://example.test/x", ["webhook.delivery"], None, "input.eventKinds.0"),
        ("https://example.test/x", ["member.registered"], "short", "input.secret"),
    ],
)
async def test_bad_endpoint_input_is_refused_and_writes_nothing(
    gql: Any, url: str, kinds: list[str], secret: str | None, field: str
) -> None:
    body = await gql(CREATE, {"input": {"url": url, "eventKinds": kinds, "secret": secret}})
    result = body["data"]["createWebhookEndpoint"]
    assert result["__typename"] == "ValidationError"
    assert result["code"] == "VALIDATION_ERROR"
    assert field in [f["field"] for f in result["fields"]]
    assert (await gql(ENDPOINTS))["data"]["webhookEndpoints"] == []


async def test_unknown_endpoints_and_bad_kinds_are_typed_errors(gql: Any) -> None:
    for endpoint_id in ("999", "not-a-number"):
        body = await gql(DEACTIVATE, {"id": endpoint_id})
        assert body["data"]["deactivateWebhookEndpoint"] == {
            "__typename": "NotFoundError",
            "code": "WEBHOOK_ENDPOINT_NOT_FOUND",
        }
    body = await gql(RETRY, {"kind": "x" * 65})
    assert body["data"]["retryDeadDeliveries"] == {
        "__typename": "ValidationError",
        "code": "VALIDATION_ERROR",
    }


@pytest.mark.parametrize(
    ("document", "variables"),
    [
        (CREATE, {"input": {"url": "https://example.test/x", "eventKinds": ["member.*"]}}),
        (DEACTIVATE, {"id": "1"}),
        (ENDPOINTS, {}),
        (STATS, {}),
        (RETRY, {"kind": None}),
    ],
)
async def test_only_admins_manage_webhooks_and_the_outbox(
    gql: Any, staff_token: str, service_token: str, document: str, variables: dict[str, Any]
) -> None:
    for token, code in ((staff_token, "FORBIDDEN"), (service_token, "FORBIDDEN")):
        body = await gql(document, variables, token=token, expect_errors=True)
        assert [e["extensions"]["code"] for e in body["errors"]] == [code]
        assert body["data"] is None
    anonymous = await gql.http.post("/graphql", json={"query": document, "variables": variables})
    assert [e["extensions"]["code"] for e in anonymous.json()["errors"]] == ["UNAUTHENTICATED"]
    assert (await gql(ENDPOINTS))["data"]["webhookEndpoints"] == []
