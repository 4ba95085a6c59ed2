"""Arguments naming an object take the id the API hands out for it."""

from __future__ import annotations

from typing import Any

import pytest
from strawberry import relay

from loyalty.graphql import ids
from loyalty.graphql.schema import schema

REGISTER = """
mutation($input: RegisterMemberInput!) { registerMember(input: $input) {
  ... on RegisterMemberSuccess { member { id } }
} }
"""
PROFILE = """
mutation($input: UpdateMemberProfileInput!) { updateMemberProfile(input: $input) { __typename } }
"""
AUDIT = """
query($targetId: String, $targetType: String) {
  auditEntries(targetId: $targetId, targetType: $targetType, first: 20) {
    edges { node { action targetType targetId } }
  }
}
"""


async def _audit(gql: Any, target_id: str, target_type: str | None = None) -> list[Any]:
    body = await gql(AUDIT, {"targetId": target_id, "targetType": target_type})
    return [e["node"] for e in body["data"]["auditEntries"]["edges"]]


async def test_audit_entries_take_the_member_id_the_api_hands_out(gql: Any) -> None:
    # Given a member registered and then edited by an admin
    body = await gql(REGISTER, {"input": {"channel": "POS", "displayName": "甲"}})
    member_id = body["data"]["registerMember"]["member"]["id"]
    await gql(PROFILE, {"input": {"memberId": member_id, "displayName": "乙"}})
    number = relay.GlobalID.from_id(member_id).node_id

    # When the log is asked for that member by its global id
    by_global_id = await _audit(gql, member_id)

    # Then both writes are listed, as under the recorded number
    assert [e["action"] for e in by_global_id] == [
        "Mutation.updateMemberProfile",
        "Mutation.registerMember",
    ]
    assert {(e["targetType"], e["targetId"]) for e in by_global_id} == {("Member", number)}
    assert await _audit(gql, number) == by_global_id
    assert await _audit(gql, member_id, "Member") == by_global_id


async def test_a_global_id_selects_its_kind(gql: Any) -> None:
    body = await gql(REGISTER, {"input": {"channel": "POS", "displayName": "甲"}})
    member_id = body["data"]["registerMember"]["member"]["id"]
    number = relay.GlobalID.from_id(member_id).node_id

    # The same number as another kind's global id, or another kind asked for: nothing
    assert await _audit(gql, relay.to_base64("ApiKey", number)) == []
    assert await _audit(gql, member_id, "ApiKey") == []


def test_node_types_are_the_schemas_nodes() -> None:
    node = schema._schema.get_type("Node")
    assert {t.name for t in schema._schema.get_possible_types(node)} == ids.NODE_TYPES


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (relay.to_base64("Member", 203), 203),
        ("203", 203),
        (relay.GlobalID("Member", "203"), 203),
        (relay.to_base64("Order", 203), None),
        (relay.GlobalID("Order", "203"), None),
        (relay.to_base64("Member", "x"), None),
        ("0", None),
        ("-1", None),
        ("٣", None),
        (str(2**63), None),
        ("", None),
    ],
)
def test_pk_decodes_global_ids_and_numbers(value: Any, expected: int | None) -> None:
    assert ids.pk(value, "Member") == expected
