"""Points through the API: member.points, history, redeem, adjust, rules, finance, jobs, CLI."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from strawberry.relay import to_base64

from loyalty import clock
from loyalty.auth.principal import Principal, Role
from loyalty.graphql.context import Context
from loyalty.graphql.loaders import Loaders
from loyalty.jobs import JobQueue
from loyalty.points import service
from loyalty.points.models import PointsEntry
from tests.conftest import token_for
from tests.factories.members import create_member
from tests.factories.points import grant_points

REDEEM = """
mutation Redeem($input: RedeemPointsInput!) {
  redeemPoints(input: $input) {
    __typename
    ... on RedeemPointsSuccess { entryId amount balance replayed }
    ... on InsufficientPointsError { code balance requested }
    ... on ConflictError { code }
    ... on ValidationError { code fields { field code } }
  }
}
"""

POINTS = """
query($id: ID!) { member(id: $id) {
  points { balance pending debt expiringSoon(days: 30) lots { amount remaining expiresAt } }
  pointsHistory(first: 2) {
    edges { cursor node { kind amount balanceAfter source { type reference } lots { amount } } }
    pageInfo { hasNextPage endCursor }
  }
} }
"""


def gid(member_id: int) -> str:
    return to_base64("Member", member_id)


async def test_member_redeems_own_points_and_reads_balance_and_history(
    gql: Any, settings: Any
) -> None:
    member = await create_member()
    with clock.frozen(datetime.now(UTC)):
        await grant_points(member.id, 30, expires_at=clock.now() + timedelta(days=10))
        await grant_points(member.id, 70)
    token = token_for(settings, Role.MEMBER, member_id=member.id)
    body = await gql(REDEEM, {"input": {"amount": 40, "idempotencyKey": "k1"}}, token=token)
    assert body["data"]["redeemPoints"] == {
        "__typename": "RedeemPointsSuccess",
        "entryId": body["data"]["redeemPoints"]["entryId"],
        "amount": -40,
        "balance": 60,
        "replayed": False,
    }
    short = await gql(REDEEM, {"input": {"amount": 61, "idempotencyKey": "k2"}}, token=token)
    assert short["data"]["redeemPoints"] == {
        "__typename": "InsufficientPointsError",
        "code": "INSUFFICIENT_POINTS",
        "balance": 60,
        "requested": 61,
    }

    read = (await gql(POINTS, {"id": gid(member.id)}, token=token))["data"]["member"]
    assert read["points"]["balance"] == 60
    assert read["points"]["expiringSoon"] == 0  # the 30-point lot was spent first
    assert [lot["remaining"] for lot in read["points"]["lots"]] == [60]
    first = read["pointsHistory"]["edges"][0]["node"]
    assert first["kind"] == "REDEEM" and first["source"]["type"] == "REDEMPTION"
    assert sorted(x["amount"] for x in first["lots"]) == [10, 30]
    assert read["pointsHistory"]["pageInfo"]["hasNextPage"] is True
    after = read["pointsHistory"]["pageInfo"]["endCursor"]
    more = await gql(
        """query($id: ID!, $after: String) { member(id: $id) {
            pointsHistory(first: 5, after: $after) { edges { node { kind amount } } } } }""",
        {"id": gid(member.id), "after": after},
        token=token,
    )
    assert [e["node"]["amount"] for e in more["data"]["member"]["pointsHistory"]["edges"]] == [30]


async def test_member_may_not_spend_or_read_another_members_points(gql: Any, settings: Any) -> None:
    owner = await create_member()
    other = await create_member()
    await grant_points(owner.id, 50)
    token = token_for(settings, Role.MEMBER, member_id=other.id)
    body = await gql(
        REDEEM,
        {"input": {"memberId": gid(owner.id), "amount": 10, "idempotencyKey": "steal"}},
        token=token,
        expect_errors=True,
    )
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    read = await gql(POINTS, {"id": gid(owner.id)}, token=token)
    assert read["data"]["member"] is None
    assert (await service.get_account(member_id=owner.id)).balance == 50


async def test_service_redeems_at_checkout_and_admin_adjusts(gql: Any, service_token: str) -> None:
    member = await create_member()
    await grant_points(member.id, 50)
    payload = {
        "memberId": gid(member.id),
        "amount": 20,
        "idempotencyKey": "till-1",
        "orderChannel": "POS",
        "orderExternalId": "P-9",
    }
    body = await gql(REDEEM, {"input": payload}, token=service_token)
    assert body["data"]["redeemPoints"]["balance"] == 30
    conflict = await gql(REDEEM, {"input": {**payload, "amount": 21}}, token=service_token)
    assert conflict["data"]["redeemPoints"] == {
        "__typename": "ConflictError",
        "code": "IDEMPOTENCY_CONFLICT",
    }
    adjust = """mutation($input: AdjustPointsInput!) { adjustPoints(input: $input) {
        __typename ... on AdjustPointsSuccess { balance } ... on ValidationError { code } } }"""
    variables = {
        "input": {"memberId": gid(member.id), "amount": 5, "reason": "", "idempotencyKey": "a"}
    }
    denied = await gql(adjust, variables, token=service_token, expect_errors=True)
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert (await gql(adjust, variables))["data"]["adjustPoints"]["__typename"] == (
        "ValidationError"
    )
    variables["input"]["reason"] = "门店补偿"
    assert (await gql(adjust, variables))["data"]["adjustPoints"] == {
        "__typename": "AdjustPointsSuccess",
        "balance": 35,
    }


async def test_admin_edits_rules_and_simulates_an_order(gql: Any) -> None:
    save = """mutation($input: EarningRuleInput!) { saveEarningRule(input: $input) {
        __typename ... on SaveEarningRuleSuccess { rule { id code } }
        ... on ValidationError { fields { field code } } } }"""
    base = {"code": "base", "name": "基础", "kind": "BASE", "pointsPerUnit": 1}
    assert (await gql(save, {"input": base}))["data"]["saveEarningRule"]["rule"]["code"] == "base"
    bad = {"code": "bonus", "name": "鞋类", "kind": "CATEGORY_BONUS", "multiplierPermille": 2000}
    result = (await gql(save, {"input": bad}))["data"]["saveEarningRule"]
    assert result["fields"] == [{"field": "categories", "code": "REQUIRED"}]
    bonus = {**bad, "categories": ["shoes"]}
    assert (await gql(save, {"input": bonus}))["data"]["saveEarningRule"]["__typename"] == (
        "SaveEarningRuleSuccess"
    )
    simulate = """query($input: SimulateEarnInput!) { simulateEarn(input: $input) {
        __typename ... on EarnSimulation { points paidAmount rules { code applied reason } } } }"""
    lines = [{"sku": "A", "quantity": 1, "unitPrice": 12_345, "category": "bags"}]
    body = await gql(simulate, {"input": {"channel": "APP", "currency": "CNY", "lines": lines}})
    assert body["data"]["simulateEarn"] == {
        "__typename": "EarnSimulation",
        "points": 123,
        "paidAmount": 12_345,
        "rules": [
            {"code": "base", "applied": True, "reason": "APPLIED"},
            {"code": "bonus", "applied": False, "reason": "NO_MATCHING_LINES"},
        ],
    }


async def test_finance_view_reports_liability_and_breakage(gql: Any, service_token: str) -> None:
    member = await create_member()
    t0 = datetime(2024, 1, 10, 4, tzinfo=UTC)
    with clock.frozen(t0):
        await grant_points(member.id, 100)
        await service.redeem(member_id=member.id, amount=30, idempotency_key="r")
        await grant_points(member.id, 5, expires_at=t0 + timedelta(days=2))
    with clock.frozen(t0 + timedelta(days=3)):
        await service.expire_due()
    query = """{ pointsLiability { outstanding pending debt byExpiryMonth { month points }
        flows { month issued redeemed expired } } }"""
    with clock.frozen(t0 + timedelta(days=3)):
        body = await gql(query)
    assert body["data"]["pointsLiability"] == {
        "outstanding": 70,
        "pending": 0,
        "debt": 0,
        "byExpiryMonth": [{"month": "2025-01", "points": 70}],
        "flows": [{"month": "2024-01", "issued": 105, "redeemed": 30, "expired": 5}],
    }
    denied = await gql(query, token=service_token, expect_errors=True)
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_jobs_run_in_the_worker(redis: Any, worker: Any, orm: Any) -> None:
    member = await create_member()
    await grant_points(member.id, 9, expires_at=clock.now() - timedelta(seconds=1))
    channel = redis.pubsub()
    await channel.subscribe(f"loyalty:points:balance:{member.id}")
    await redis.enqueue_job("points_expire_due", _queue_name="loyalty:queue")
    await redis.enqueue_job("points_activate_pending", _queue_name="loyalty:queue")
    assert await worker() == 3  # the expiry run fans out one chunk job
    assert (await service.get_account(member_id=member.id)).balance == 0
    message = None
    for _ in range(20):
        message = await channel.get_message(ignore_subscribe_messages=True, timeout=0.2)
        if message:
            break
    assert message is not None and b'"balance":0' in message["data"]
    await channel.aclose()


async def test_balance_subscription_pushes_the_members_own_balance(
    orm: Any, redis: Any, settings: Any
) -> None:
    from loyalty.graphql.schema import build_schema

    member = await create_member()
    await grant_points(member.id, 10)
    context = Context(
        request=None,  # type: ignore[arg-type]
        response=None,
        settings=settings,
        principal=Principal(role=Role.MEMBER, subject="m", member_id=member.id),
        loaders=Loaders(),
        jobs=JobQueue(redis),
        redis=redis,
    )
    schema = build_schema(settings)
    stream = await schema.subscribe(
        "subscription { pointsBalanceChanged { memberId balance debt } }", context_value=context
    )

    async def first() -> Any:
        async for result in stream:  # type: ignore[union-attr]
            return result
        return None

    waiter = asyncio.create_task(first())
    for _ in range(50):  # wait until the subscription listens
        if (await redis.pubsub_numsub(f"loyalty:points:balance:{member.id}"))[0][1]:
            break
        await asyncio.sleep(0.02)
    from loyalty.points import notify

    await service.redeem(member_id=member.id, amount=4, idempotency_key="sub")
    await notify.balance_changed(redis, [member.id])
    result = await asyncio.wait_for(waiter, timeout=5)
    assert result.errors is None, result.errors
    assert result.data == {
        "pointsBalanceChanged": {"memberId": gid(member.id), "balance": 6, "debt": 0}
    }
    await stream.aclose()  # type: ignore[union-attr]


async def test_check_ledger_command_exits_non_zero_on_a_mismatch(orm: Any, settings: Any) -> None:
    member = await create_member()
    movement = await grant_points(member.id, 10)
    env = {**os.environ, "LOYALTY_DATABASE_URL": settings.database_url, "LOYALTY_ENV": "test"}

    async def run() -> tuple[int, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "loyalty.cli",
            "check-ledger",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await process.communicate()
        return process.returncode or 0, out.decode()

    code, out = await run()
    assert (code, out.strip().splitlines()[-1]) == (0, "ledger ok")
    await PointsEntry.filter(id=movement.entry_id).update(remaining=11)
    code, out = await run()
    assert code == 1
    assert f"lot:{movement.entry_id}" in out and f"member:{member.id}" in out
