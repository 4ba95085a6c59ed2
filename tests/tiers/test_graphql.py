"""Tiers through the API: the ladder, member fields, admin operations, access."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from strawberry import relay

from loyalty.auth.principal import Role
from loyalty.settings import Settings
from loyalty.tiers.models import Tier, TierChange
from tests.conftest import token_for
from tests.factories.members import create_member
from tests.factories.tiers import create_order, place_on_tier

pytestmark = pytest.mark.usefixtures("ladder")

MEMBER_TIER = """
query($id: ID!) { member(id: $id) {
  tier { code name } tierSince tierExpiresAt
  tierProgress { tier { code } nextTier { code } metric currentValue amountToNextTier
                 retainMetric amountToRetain retainBy }
  tierHistory { fromCode toCode reason actor note }
} }
"""

ASSIGN = """
mutation($input: AssignTierInput!) { assignTier(input: $input) {
  __typename
  ... on AssignTierSuccess { tier { code } lockedUntil expiresAt }
  ... on NotFoundError { code }
  ... on ValidationError { fields { field code } }
} }
"""

CREATE = """
mutation($input: TierRuleInput!) { createTier(input: $input) {
  __typename
  ... on TierSuccess { tier { code threshold windowDays } }
  ... on ValidationError { code fields { field code } }
} }
"""

PREVIEW = """
query($rules: [TierRuleInput!]!) { previewTierRules(rules: $rules) {
  __typename
  ... on TierRulePreview { up down stay current { code members up down stay }
                           proposed { code members } }
  ... on ValidationError { fields { field code } }
} }
"""


def gid(member_id: int) -> str:
    return str(relay.GlobalID("Member", str(member_id)))


async def test_member_sees_own_tier_progress_and_history(
    gql: Any, settings: Settings, ladder: dict[str, Tier], now: datetime
) -> None:
    member = await create_member()
    await create_order(member.id, 250_000, occurred_at=now - timedelta(days=5), run_hooks=True)
    token = token_for(settings, Role.MEMBER, member_id=member.id)

    body = await gql(MEMBER_TIER, {"id": gid(member.id)}, token=token)

    data = body["data"]["member"]
    assert data["tier"] == {"code": "SILVER", "name": "银卡"}
    assert datetime.fromisoformat(data["tierExpiresAt"]) == now + timedelta(days=365)
    assert data["tierProgress"] == {
        "tier": {"code": "SILVER"},
        "nextTier": {"code": "GOLD"},
        "metric": "SPEND",
        "currentValue": 250_000,
        "amountToNextTier": 550_000,
        "retainMetric": "SPEND",
        # At expiry the window starts today: the earlier order no longer counts.
        "amountToRetain": 200_000,
        "retainBy": data["tierExpiresAt"],
    }
    assert data["tierHistory"] == [
        {"fromCode": "BASIC", "toCode": "SILVER", "reason": "ORDER", "actor": "system",
         "note": None}
    ]  # fmt: skip


async def test_member_list_loads_tiers_in_batches(gql: Any, ladder: dict[str, Tier]) -> None:
    for code in ("SILVER", "GOLD", "DIAMOND"):
        member = await create_member()
        await place_on_tier(member.id, ladder[code])
    await create_member()
    body = await gql("{ members(first: 10) { edges { node { tier { code } } } } }")
    codes = sorted(e["node"]["tier"]["code"] for e in body["data"]["members"]["edges"])
    assert codes == ["BASIC", "DIAMOND", "GOLD", "SILVER"]


async def test_admin_assigns_a_locked_tier(gql: Any, now: datetime) -> None:
    member = await create_member()
    lock = (now + timedelta(days=90)).isoformat()
    body = await gql(
        ASSIGN,
        {"input": {"memberId": gid(member.id), "tierCode": "DIAMOND", "lockedUntil": lock,
                   "note": "VIP 邀请"}},
    )  # fmt: skip
    result = body["data"]["assignTier"]
    assert result["__typename"] == "AssignTierSuccess"
    assert result["tier"] == {"code": "DIAMOND"}
    change = await TierChange.get(member_id=member.id)
    assert (change.reason, change.actor, change.note) == ("ADMIN", "test-ADMIN", "VIP 邀请")


async def test_tier_assignment_is_audited_under_the_members_global_id(gql: Any) -> None:
    member = await create_member()
    await gql(ASSIGN, {"input": {"memberId": gid(member.id), "tierCode": "GOLD"}})
    body = await gql(
        "query($id: String) { auditEntries(targetId: $id) { edges { node { action targetType } } } }",
        {"id": gid(member.id)},
    )
    listed = [e["node"] for e in body["data"]["auditEntries"]["edges"]]
    assert {"action": "tier.assign", "targetType": "Member"} in listed


async def test_assign_unknown_tier_or_member_is_not_found(gql: Any) -> None:
    member = await create_member()
    unknown_tier = await gql(
        ASSIGN, {"input": {"memberId": gid(member.id), "tierCode": "PLATINUM"}}
    )
    assert unknown_tier["data"]["assignTier"] == {
        "__typename": "NotFoundError", "code": "TIER_NOT_FOUND"
    }  # fmt: skip
    unknown_member = await gql(ASSIGN, {"input": {"memberId": gid(999_999), "tierCode": "GOLD"}})
    assert unknown_member["data"]["assignTier"]["code"] == "MEMBER_NOT_FOUND"


@pytest.mark.parametrize("role", [Role.STAFF, Role.SERVICE, Role.MEMBER])
async def test_only_admins_manage_tiers(gql: Any, settings: Settings, role: Role) -> None:
    member = await create_member()
    token = token_for(settings, role, member_id=member.id if role is Role.MEMBER else None)
    body = await gql(
        ASSIGN,
        {"input": {"memberId": gid(member.id), "tierCode": "GOLD"}},
        token=token,
        expect_errors=True,
    )
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


@pytest.mark.parametrize(
    ("changes", "field", "code"),
    [
        ({"threshold": -1}, "input.threshold", "NEGATIVE"),
        ({"rank": 20}, "input.rank", "DUPLICATE"),
        ({"code": "GOLD", "rank": 25}, "input.code", "DUPLICATE"),
        ({"threshold": 500_000}, "input.threshold", "NOT_ASCENDING"),
        ({"windowDays": None}, "input.windowDays", "INVALID"),
    ],
)
async def test_create_tier_refuses_bad_input(
    gql: Any, changes: dict[str, Any], field: str, code: str
) -> None:
    tier = {"code": "PLATINUM", "name": "白金", "rank": 25, "metric": "SPEND",
            "threshold": 1_200_000, "window": "ROLLING_DAYS", **changes}  # fmt: skip
    body = await gql(CREATE, {"input": tier})
    result = body["data"]["createTier"]
    assert result["__typename"] == "ValidationError"
    assert {"field": field, "code": code} in result["fields"]
    assert await Tier.filter(rank=25).count() == 0


async def test_create_tier_then_members_are_reevaluated(
    gql: Any, worker: Any, ladder: dict[str, Tier]
) -> None:
    member = await create_member()
    await create_order(member.id, 1_300_000)
    await place_on_tier(member.id, ladder["GOLD"])
    body = await gql(
        CREATE,
        {"input": {"code": "PLATINUM", "name": "白金", "rank": 25, "metric": "SPEND",
                   "threshold": 1_200_000, "window": "ROLLING_DAYS"}},
    )  # fmt: skip
    assert body["data"]["createTier"]["tier"]["code"] == "PLATINUM"
    await worker()
    change = await TierChange.get(member_id=member.id)
    assert (change.from_code, change.to_code, change.reason) == ("GOLD", "PLATINUM", "RULE_CHANGE")


async def test_preview_tier_rules_through_the_api(gql: Any) -> None:
    member = await create_member()
    await create_order(member.id, 300_000)
    rules = [
        {"code": "BASIC", "name": "普通", "rank": 0, "metric": "SPEND", "threshold": 0,
         "window": "ROLLING_DAYS", "retentionDays": None},
        {"code": "SILVER", "name": "银卡", "rank": 10, "metric": "SPEND", "threshold": 250_000,
         "window": "ROLLING_DAYS"},
    ]  # fmt: skip
    body = await gql(PREVIEW, {"rules": rules})
    result = body["data"]["previewTierRules"]
    assert result["__typename"] == "TierRulePreview"
    assert (result["up"], result["down"], result["stay"]) == (1, 0, 0)
    assert {"code": "SILVER", "members": 1} in result["proposed"]

    rules[1]["threshold"] = -5
    bad = await gql(PREVIEW, {"rules": rules})
    assert {"field": "rules[1].threshold", "code": "NEGATIVE"} in bad["data"]["previewTierRules"][
        "fields"
    ]
