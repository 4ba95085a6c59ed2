"""recordOrder / refundOrder through the API, as a channel system would call them."""

from __future__ import annotations

from typing import Any

import pytest
from strawberry.relay import to_base64

from loyalty.auth.principal import Role
from loyalty.orders.models import Order, OrderLine
from loyalty.points.models import PointsEntry
from tests.conftest import token_for
from tests.factories.members import create_member
from tests.factories.points import create_rule

RECORD = """
mutation Record($input: RecordOrderInput!) {
  recordOrder(input: $input) {
    __typename
    ... on RecordOrderSuccess {
      pointsEarned pointsPending balance guest replayed tierChange { fromTier toTier }
      order { id externalId paidAmount lines { lineNo points paid } member { id } }
    }
    ... on ValidationError { code fields { field code } }
    ... on ConflictError { code }
    ... on NotFoundError { code }
  }
}
"""

REFUND = """
mutation Refund($input: RefundOrderInput!) {
  refundOrder(input: $input) {
    __typename
    ... on RefundOrderSuccess { replayed refund { amount pointsReversed debtCreated balance } }
    ... on RefundExceedsOrderError { code lineNo requested refundable }
    ... on NotFoundError { code }
    ... on ValidationError { code fields { field code } }
  }
}
"""


def gid(member_id: int) -> str:
    return to_base64("Member", member_id)


def order_input(member_id: int | None = None, **extra: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "channel": "POS",
        "externalId": "P-1",
        "occurredAt": "2024-06-01T10:00:00+08:00",
        "currency": "CNY",
        "lines": [
            {"sku": "TEA", "quantity": 2, "unitPrice": 4_500, "category": "tea"},
            {"sku": "CUP", "quantity": 1, "unitPrice": 1_000},
        ],
    }
    if member_id is not None:
        payload["memberId"] = gid(member_id)
    payload.update(extra)
    return payload


async def test_service_records_an_order_and_a_replay_answers_the_same(
    gql: Any, service_token: str
) -> None:
    member = await create_member()
    await create_rule(points_per_unit=1)
    body = await gql(RECORD, {"input": order_input(member.id)}, token=service_token)
    result = body["data"]["recordOrder"]
    assert result["__typename"] == "RecordOrderSuccess"
    assert (result["pointsEarned"], result["balance"], result["guest"]) == (100, 100, False)
    assert [line["points"] for line in result["order"]["lines"]] == [90, 10]
    assert result["order"]["member"]["id"] == gid(member.id)

    again = (await gql(RECORD, {"input": order_input(member.id)}, token=service_token))["data"][
        "recordOrder"
    ]
    assert again["replayed"] is True and again["order"]["id"] == result["order"]["id"]
    changed = order_input(member.id, discountTotal=100)
    conflict = (await gql(RECORD, {"input": changed}, token=service_token))["data"]["recordOrder"]
    assert conflict == {"__typename": "ConflictError", "code": "ORDER_CONFLICT"}
    assert await Order.all().count() == 1


async def test_a_guest_order_by_unknown_identity_is_kept(gql: Any, service_token: str) -> None:
    identity = {"kind": "POS_CARD", "value": "C-404"}
    body = await gql(RECORD, {"input": order_input(identity=identity)}, token=service_token)
    result = body["data"]["recordOrder"]
    assert (result["guest"], result["balance"], result["order"]["member"]) == (True, None, None)


@pytest.mark.parametrize(
    "line",
    [
        {"sku": "X", "quantity": 1.5, "unitPrice": 100},
        {"sku": "X", "quantity": 1, "unitPrice": 99.5},
        {"sku": "X", "quantity": 1, "unitPrice": "9223372036854775808"},
        {"sku": "X", "quantity": 1, "unitPrice": 9223372036854775808},
        {"sku": "X", "quantity": 2**40, "unitPrice": 1},
    ],
)
async def test_fractional_or_oversized_numbers_are_refused_before_any_write(
    gql: Any, service_token: str, line: dict[str, Any]
) -> None:
    member = await create_member()
    body = await gql(
        RECORD,
        {"input": order_input(member.id, lines=[line])},
        token=service_token,
        expect_errors=True,
    )
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert await Order.all().count() == 0


@pytest.mark.parametrize(
    ("patch", "field", "code"),
    [
        ({"currency": "ABC"}, "currency", "UNKNOWN_CURRENCY"),
        (
            {"lines": [{"sku": "X", "quantity": -2, "unitPrice": 100}]},
            "lines[0].quantity",
            "OUT_OF_RANGE",
        ),
        (
            {"lines": [{"sku": "X", "quantity": 1, "unitPrice": -1}]},
            "lines[0].unitPrice",
            "OUT_OF_RANGE",
        ),
    ],
)
async def test_invalid_values_are_a_validation_error(
    gql: Any, service_token: str, patch: dict[str, Any], field: str, code: str
) -> None:
    member = await create_member()
    body = await gql(RECORD, {"input": order_input(member.id, **patch)}, token=service_token)
    result = body["data"]["recordOrder"]
    assert result["__typename"] == "ValidationError"
    assert [(f["field"], f["code"]) for f in result["fields"]] == [(field, code)]
    assert await Order.all().count() == 0
    assert await PointsEntry.all().count() == 0


async def test_a_key_for_another_channel_may_not_record(gql: Any, settings: Any) -> None:
    member = await create_member()
    app_key = token_for(settings, Role.SERVICE, channel="APP")
    body = await gql(RECORD, {"input": order_input(member.id)}, token=app_key, expect_errors=True)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    member_token = token_for(settings, Role.MEMBER, member_id=member.id)
    body = await gql(
        RECORD, {"input": order_input(member.id)}, token=member_token, expect_errors=True
    )
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await Order.all().count() == 0


async def test_refund_through_the_api(gql: Any, service_token: str) -> None:
    member = await create_member()
    await create_rule(points_per_unit=1)
    await gql(RECORD, {"input": order_input(member.id)}, token=service_token)
    refund = {"channel": "POS", "orderExternalId": "P-1", "refundId": "R-1"}
    part = {**refund, "lines": [{"lineNo": 1, "quantity": 1}]}
    body = await gql(REFUND, {"input": part}, token=service_token)
    assert body["data"]["refundOrder"]["refund"] == {
        "amount": 4_500,
        "pointsReversed": 45,
        "debtCreated": 0,
        "balance": 55,
    }
    too_much = {**refund, "refundId": "R-2", "lines": [{"lineNo": 1, "quantity": 2}]}
    body = await gql(REFUND, {"input": too_much}, token=service_token)
    assert body["data"]["refundOrder"] == {
        "__typename": "RefundExceedsOrderError",
        "code": "REFUND_EXCEEDS_ORDER",
        "lineNo": 1,
        "requested": 2,
        "refundable": 1,
    }
    unknown = {**refund, "orderExternalId": "NOPE", "whole": True}
    body = await gql(REFUND, {"input": unknown}, token=service_token)
    assert body["data"]["refundOrder"] == {"__typename": "NotFoundError", "code": "ORDER_NOT_FOUND"}
    assert (await OrderLine.get(line_no=1)).refunded_quantity == 1


async def test_a_member_sees_only_its_own_orders(
    gql: Any, service_token: str, settings: Any
) -> None:
    owner = await create_member()
    other = await create_member()
    body = await gql(RECORD, {"input": order_input(owner.id)}, token=service_token)
    order_id = body["data"]["recordOrder"]["order"]["id"]
    query = "query($id: ID!) { node(id: $id) { ... on Order { externalId member { id } } } }"
    mine = await gql(
        query, {"id": order_id}, token=token_for(settings, Role.MEMBER, member_id=owner.id)
    )
    assert mine["data"]["node"]["member"]["id"] == gid(owner.id)
    theirs = await gql(
        query, {"id": order_id}, token=token_for(settings, Role.MEMBER, member_id=other.id)
    )
    assert theirs["data"]["node"] is None
    listing = """query($id: ID!) { member(id: $id) {
        favouriteCategories orders(first: 5) { edges { node { externalId } } hasNextPage } } }"""
    result = await gql(listing, {"id": gid(owner.id)})
    assert result["data"]["member"]["favouriteCategories"] == ["tea"]
    assert result["data"]["member"]["orders"]["edges"] == [{"node": {"externalId": "P-1"}}]
